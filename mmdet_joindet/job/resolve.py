# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The job's configs: the templates of ``configs/proxy/`` with paths and
sizes filled in from the command line.

Each ``resolve_*`` returns a :class:`Config` the job writes to its stage's
work dir and runs with the package's tools; the same file repeats the run
with ``mim train mmdet_joindet <file>`` or ``tools/dist_train.sh``. All
paths in it are absolute.
"""
import copy
import json
import os.path as osp
from typing import Dict, Optional, Sequence

from mmengine.config import Config

from mmdet_joindet.utils.config_edit import find_pipeline, set_pipeline_size
from mmdet_joindet.utils.paths import repo_file

__all__ = [
    'TEMPLATES', 'ARCHS', 'resolve_ssl', 'resolve_pretrain',
    'resolve_finetune', 'unlabeled_dataset'
]

TEMPLATES = dict(
    ssl='configs/proxy/dense-swav_r18-half_1xb32-800it_proxy.py',
    pretrain='configs/proxy/joindet_r18-half_1xb8-6e_proxy.py',
    finetune='configs/proxy/'
    'deformable-detr_r18-half_joindet-pre_1xb8-100e_proxy-10pct.py',
    baseline='configs/proxy/'
    'deformable-detr_r18-half_ssl_1xb8-100e_proxy-10pct.py')
# CPU-sized models: the templates' half-width ResNet-18 (its backbone comes
# from the `ssl` stage), and a full-width one that can start from
# ImageNet-supervised weights. The paper's R-50 runs on GPUs with the
# configs of configs/joindet and configs/finetune.
ARCHS = {
    'r18-half': dict(base_channels=32, backbone=None),
    'r18': dict(base_channels=64, backbone='torchvision://resnet18'),
}


def _template(name: str) -> Config:
    return Config.fromfile(repo_file(TEMPLATES[name]))


def _set_arch(model, arch: str, backbone: Optional[str]) -> None:
    """Backbone width and initialisation of a template's model."""
    spec = ARCHS[arch]
    model.backbone.base_channels = spec['base_channels']
    model.neck.in_channels = [spec['base_channels'] * 2**i for i in (1, 2, 3)]
    checkpoint = backbone if backbone is not None else spec['backbone']
    if checkpoint in (None, 'none'):
        model.backbone.init_cfg = None
    else:
        if '://' not in checkpoint:
            checkpoint = osp.abspath(checkpoint)
        model.backbone.init_cfg = dict(
            type='Pretrained', checkpoint=checkpoint)


def set_epochs(cfg: Config,
               epochs: int,
               drop_at: Optional[float],
               evals: int = 10) -> None:
    """``epochs`` epochs, the LR dropped once at that share of them (None:
    constant), validation and checkpoints ``evals`` times (at most; 0: a
    checkpoint at the end only, validation left to the caller)."""
    cfg.train_cfg.max_epochs = epochs
    every = epochs if evals == 0 else max(1, epochs // evals)
    if 'val_interval' in cfg.train_cfg:
        cfg.train_cfg.val_interval = every
    cfg.default_hooks.checkpoint.interval = every
    if drop_at is None:
        cfg.param_scheduler = []
    else:
        cfg.param_scheduler = [
            dict(
                type='MultiStepLR',
                by_epoch=True,
                begin=0,
                end=epochs,
                milestones=[max(1, round(drop_at * epochs))],
                gamma=0.1)
        ]


def unlabeled_dataset(source: str, image_root: Optional[str] = None) -> Dict:
    """The dataset config of a folder of images or of a COCO json's images
    (``file_name`` relative to ``image_root``, by default the json's
    folder)."""
    source = osp.abspath(source)
    if osp.isdir(source):
        return dict(
            type='ImageFolderDataset',
            data_root=source,
            data_prefix=dict(img=''))
    return dict(
        type='UnlabeledCocoDataset',
        data_root='',
        ann_file=source,
        data_prefix=dict(img=osp.abspath(image_root or osp.dirname(source))))


def resolve_ssl(images: str,
                image_root: Optional[str] = None,
                iters: int = 800,
                batch_size: int = 32,
                seed: int = 0) -> Config:
    """DenseSwAV of the half-width ResNet-18 on the unlabeled images."""
    cfg = _template('ssl')
    cfg.train_dataloader.dataset = dict(
        unlabeled_dataset(images, image_root),
        pipeline=cfg.train_dataloader.dataset.pipeline)
    cfg.train_dataloader.batch_size = batch_size
    cfg.train_cfg.max_iters = iters
    warm = max(1, iters // 10)
    cfg.param_scheduler[0].end = warm
    cfg.param_scheduler[1].begin = warm
    cfg.param_scheduler[1].end = iters
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = min(10, iters)
    cfg.randomness = dict(seed=seed)
    return cfg


def resolve_pretrain(images: str,
                     image_root: Optional[str] = None,
                     arch: str = 'r18-half',
                     backbone: Optional[str] = None,
                     image_size: int = 128,
                     prior_scale: float = 2,
                     epochs: int = 6,
                     update_interval: int = 2,
                     batch_size: int = 8,
                     seed: int = 0) -> Config:
    """JoinDet pretraining on the unlabeled images, trained at
    ``image_size`` and its priors read at ``prior_scale`` times that."""
    cfg = _template('pretrain')
    _set_arch(cfg.model, arch, backbone)
    loader = cfg.train_dataloader
    loader.dataset.dataset = unlabeled_dataset(images, image_root)
    loader.batch_size = batch_size
    size = (image_size, image_size)
    set_pipeline_size(find_pipeline(loader.dataset), size)
    hook = cfg.custom_hooks[0]
    side = round(prior_scale * image_size)
    set_pipeline_size(hook.infer_pipeline, (side, side))
    hook.interval = update_interval
    set_epochs(cfg, epochs, drop_at=5 / 6)
    cfg.randomness = dict(seed=seed)
    return cfg


def read_categories(ann_file: str) -> Sequence[str]:
    """Category names in id order (the label order mmdet uses)."""
    with open(ann_file) as f:
        cats = json.load(f)['categories']
    return tuple(c['name'] for c in sorted(cats, key=lambda c: c['id']))


def resolve_finetune(pretrain_cfg: Config,
                     train_json: str,
                     val_json: str,
                     train_root: Optional[str] = None,
                     val_root: Optional[str] = None,
                     load_from: Optional[str] = None,
                     backbone: Optional[str] = None,
                     epochs: int = 100,
                     batch_size: int = 8,
                     seed: int = 0,
                     evals: int = 10) -> Config:
    """A stock Deformable DETR with the pretraining's model sizes,
    finetuned on ``train_json`` and validated on ``val_json`` (``evals``
    times at most, the last epoch's always; 0: never, the test loop only).

    Args:
        pretrain_cfg (Config): The pretraining's resolved config: the
            finetune model copies its sizes (backbone, neck, layers,
            queries, variant) and input size.
        load_from (str, optional): The converted checkpoint. None: the
            comparison without detector pretraining.
        backbone (str, optional): Backbone weights when not ``load_from``
            (None: random weights).
    """
    cfg = _template('finetune' if load_from else 'baseline')
    pre = pretrain_cfg.model
    model = cfg.model
    for key in ('neck', 'encoder', 'decoder', 'positional_encoding'):
        model[key] = copy.deepcopy(pre[key])
    for key in ('num_queries', 'num_feature_levels', 'with_box_refine',
                'as_two_stage'):
        if key in pre:
            model[key] = pre[key]
    for key in ('depth', 'base_channels', 'out_indices', 'num_stages'):
        if key in pre.backbone:
            model.backbone[key] = pre.backbone[key]
    model.bbox_head.embed_dims = pre.bbox_head.embed_dims
    classes = read_categories(val_json)
    model.bbox_head.num_classes = len(classes)
    model.test_cfg.max_per_img = min(100, model.num_queries * len(classes))
    if load_from:
        model.backbone.init_cfg = None
        cfg.load_from = osp.abspath(load_from)
    else:  # the backbone's weights alone, or random ones
        model.backbone.init_cfg = None if backbone is None else dict(
            type='Pretrained', checkpoint=osp.abspath(backbone))
        cfg.load_from = None
    size = [
        t.scale for t in find_pipeline(pretrain_cfg.train_dataloader.dataset)
        if t.get('type') == 'RandomResize'
    ][0]
    for key, ann, root in (('train_dataloader', train_json, train_root),
                           ('val_dataloader', val_json, val_root)):
        dataset = cfg[key].dataset
        dataset.update(
            data_root='',
            ann_file=osp.abspath(ann),
            data_prefix=dict(img=osp.abspath(root or osp.dirname(ann)) + '/'),
            metainfo=dict(classes=classes))
        set_pipeline_size(dataset.pipeline, tuple(size[::-1]))
    cfg.train_dataloader.batch_size = batch_size
    cfg.test_dataloader = cfg.val_dataloader
    for evaluator in cfg.val_evaluator:
        evaluator.ann_file = osp.abspath(val_json)
    cfg.test_evaluator = cfg.val_evaluator
    set_epochs(cfg, epochs, drop_at=0.8, evals=evals)
    if evals == 0:
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.randomness = dict(seed=seed)
    return cfg
