# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Everything the package registers is in mmdet's registries and builds.

Adding a registered module without a build spec here fails the test, so the
table below always lists the package's whole public surface.
"""
import os.path as osp

import mmdet.registry as mmdet_registry
import pytest
from mmengine.config import Config
from mmengine.registry import Registry

from mmdet_joindet.testing import tiny_detr_config

REPO = osp.dirname(osp.dirname(__file__))
MODEL_CONFIGS = {
    'JoinDet':
    osp.join(REPO, 'configs/_base_/models/joindet_deformable-detr_r50-swav.py')
}
# registry name -> {module name: a minimal config that builds it}
BUILD_SPECS = {
    'dataset': {
        'ImageFolderDataset':
        dict(data_root='unused', lazy_init=True),
        'ImageNetTreeDataset':
        dict(classes='imagenet100', lazy_init=True),
        'UnlabeledCocoDataset':
        dict(ann_file='unused.json', lazy_init=True),
        'SelfSupervisedDataset':
        dict(
            dataset=dict(type='ImageFolderDataset', lazy_init=True),
            pipeline=[],
            lazy_init=True),
    },
    'transform': {
        'LoadImageSafely': {},
        'LoadPriors': {},
        'CopyPasteSmallPriors': {},
        'TwoViews': {},
        'GenerateImagePriors':
        dict(generator=dict(type='RandomCropPriorGenerator')),
    },
    'hook': {
        'ExportBackboneHook': {},
        'EpochSeedHook': {},
        'LoadFromCheckHook': {},
        'PriorUpdateHook':
        dict(infer_pipeline=[
            dict(type='PackDetInputs', meta_keys=('prior_index', ))
        ]),
    },
    'model': {
        'JoinDet':
        None,  # built from the tiny config below
        'JoinDetHead':
        dict(
            emb_dims=16,
            num_pred_layer=1,
            embed_dims=32,
            loss_cls=dict(type='FocalLoss', use_sigmoid=True)),
        'DenseSwAV':
        dict(
            backbone=dict(type='ResNet', depth=18, init_cfg=None),
            view_size=32),
        'MultiViewDataPreprocessor': {},
    },
    'metric': {
        'ClassAgnosticCocoMetric': {},
    },
    'task util': {
        'EigenRegionPriorGenerator': dict(stride=32, centre=True),
        'SelectiveSearchPriorGenerator': dict(max_priors=10),
        'RandomCropPriorGenerator': dict(num_crops=5, seed=0),
    },
}


def registered_by_plugin():
    """{registry name: {module name: class}} of mmdet_joindet's modules."""
    found = {}
    for value in vars(mmdet_registry).values():
        if not isinstance(value, Registry):
            continue
        for name, cls in value.module_dict.items():
            if cls.__module__.split('.')[0] == 'mmdet_joindet':
                found.setdefault(value.name, {})[name] = (value, cls)
    return found


def test_custom_imports_registers_everything(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text("custom_imports = dict(imports=['mmdet_joindet'], "
                        'allow_failed_imports=False)\n')
    Config.fromfile(str(cfg_file))  # imports the plugin, as configs do
    found = registered_by_plugin()
    assert {
        k: set(v)
        for k, v in found.items()
    } == {
        k: set(v)
        for k, v in BUILD_SPECS.items()
    }


@pytest.mark.parametrize('registry_name,name',
                         [(r, n) for r, specs in BUILD_SPECS.items()
                          for n in specs])
def test_each_module_builds_from_a_config(registry_name, name):
    import mmdet_joindet  # noqa: F401
    registry, cls = registered_by_plugin()[registry_name][name]
    spec = BUILD_SPECS[registry_name][name]
    if spec is None:
        cfg = tiny_detr_config(Config.fromfile(MODEL_CONFIGS[name])).model
    else:
        cfg = dict(type=name, **spec)
    assert isinstance(registry.build(cfg), cls)
