# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Every config a user can name parses, builds and trains (or tests) one
iteration on the CPU, on tiny local data with its model shrunk."""
import glob
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmdet_joindet.testing import (make_shapes_coco, tiny_data_config,
                                   tiny_detr_config)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
    if '_base_' not in p)
FAMILIES = ('joindet', 'baselines', 'ablations', 'finetune', 'proxy', 'smoke',
            'ssl')


def test_the_configs_are_found():
    for family in FAMILIES:
        assert any(p.startswith(f'configs/{family}/') for p in CONFIGS)
    folders = {p.split('/')[1] for p in CONFIGS}
    assert folders == set(FAMILIES), folders
    assert 'configs/ssl/dense-swav_r18_1xgpu_proxy-unlabeled.py' in CONFIGS


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('walk')
    coco = str(root / 'coco')
    make_shapes_coco(coco, num_images=4, size=(64, 80), seed=3)
    imagenet = root / 'imagenet' / 'train'
    rng = np.random.default_rng(0)
    for wnid in ('n01440764', 'n01443537'):
        os.makedirs(imagenet / wnid)
        img = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
        cv2.imwrite(str(imagenet / wnid / f'{wnid}_1.JPEG'), img)
    return coco, str(root / 'imagenet')


def walk_config(path: str, tiny_data, work_dir: str) -> Config:
    """The config at ``path``, shrunk to one iteration on tiny data."""
    cfg = Config.fromfile(osp.join(REPO, path))
    if cfg.model.type == 'DenseSwAV':  # the backbone's own pretraining
        cfg.model.view_size = 32
        cfg.train_dataloader.update(
            batch_size=2, num_workers=0, persistent_workers=False)
        for t in cfg.train_dataloader.dataset.pipeline:
            if t.type == 'TwoViews':
                t.size = 32
    else:
        cfg = tiny_detr_config(
            cfg, num_queries=10, image_size=(64, 80), batch_size=2)
    cfg = tiny_data_config(cfg, *tiny_data, num_images=2, work_dir=work_dir)
    loop = cfg.get('train_cfg') or {}
    if loop.get('type') == 'IterBasedTrainLoop':
        loop.max_iters = 1
    elif 'max_epochs' in loop:
        loop.max_epochs = 1
    if 'val_interval' in loop:
        loop.val_interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.save_last = False  # 1 epoch: nothing saved
    cfg.default_hooks.pop('visualization', None)
    return cfg


@pytest.fixture
def fast_config_text(monkeypatch):
    """The runner logs and dumps ``cfg.pretty_text``, which formats the
    whole config with yapf: 1.3 s a call, two calls a run, the largest cost
    of this walk. The walk checks what the configs build and run; their
    text is dumped for real by the tool runs of ``tests/test_tools``."""
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda cfg: repr(cfg._cfg_dict.to_dict())))


@pytest.mark.parametrize('path', CONFIGS)
def test_config_runs_one_iteration(path, tiny_data, tmp_path,
                                   fast_config_text):
    cfg = walk_config(path, tiny_data, str(tmp_path / 'work'))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    runner = Runner.from_cfg(cfg)
    if cfg.get('train_dataloader') is not None:
        runner.train()
        assert runner.iter == 1, f'{path}: ran {runner.iter} iterations'
        losses = runner.message_hub.log_scalars
        assert 'train/loss' in losses
        assert np.isfinite(losses['train/loss'].current())
    if cfg.get('test_dataloader') is not None and cfg.get('val_cfg') is None:
        metrics = runner.test()  # a test-only config (Table 4)
        assert metrics, f'{path}: the test loop reported no metric'
