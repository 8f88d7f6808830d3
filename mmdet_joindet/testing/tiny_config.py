# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Shrink any DETR-family config into one that runs in seconds on a CPU."""
import copy
import os.path as osp
from typing import Tuple

from mmengine.config import Config, ConfigDict

from mmdet_joindet.utils.config_edit import find_pipeline, set_pipeline_size
from mmdet_joindet.utils.paths import repo_file

RESNET_CHANNELS = {18: (64, 128, 256, 512), 34: (64, 128, 256, 512)}
TINY_MODEL_BASE = 'configs/_base_/models/tiny-deformable-detr_r18.py'


def tiny_model_delta() -> ConfigDict:
    """``tiny_model`` of ``configs/_base_/models/tiny-deformable-detr_r18.py``
    (the checkout's, else the installed package's ``.mim`` copy): the one
    definition of the tiny model, which the tiny configs inherit."""
    return Config.fromfile(repo_file(TINY_MODEL_BASE)).tiny_model


def tiny_detr_config(cfg: Config,
                     num_queries: int = 10,
                     image_size: Tuple[int, int] = (96, 128),
                     batch_size: int = 2) -> Config:
    """A copy of ``cfg`` with a tiny model and tiny, worker-less data.

    - the model delta of :func:`tiny_model_delta` (a ResNet-18 without
      pretrained weights, one encoder and one decoder layer of 64
      channels), the neck's ``in_channels`` matched to the backbone's
      ``out_indices``; two-stage models keep 256 channels, which mmdet
      hard-codes;
    - ``num_queries`` queries (``test_cfg.max_per_img`` capped to fit mmdet's
      ``max_per_img <= num_queries * num_classes`` assertion);
    - every resize/crop of every pipeline (the prior update's inference
      pipeline included) set to ``image_size`` (h, w); dataloaders with
      ``batch_size``, no workers.

    Args:
        cfg (Config): A Deformable-DETR-style config (mmdet's or this repo's).

    Returns:
        Config: The shrunk copy; ``cfg`` is unchanged.
    """
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    model.update(tiny_model_delta())
    if model.get('as_two_stage', False):
        # mmdet's two-stage proposal embedding hard-codes 128 features per
        # coordinate pair, i.e. embed_dims 256.
        for part in ('encoder', 'decoder'):
            set_embed_dims(model[part].layer_cfg, 256)
        model.positional_encoding.num_feats = 128
        model.neck.out_channels = model.bbox_head.embed_dims = 256
    _shrink_backbone(model, model.backbone.depth)
    model.num_queries = num_queries
    head = model.bbox_head
    test_cfg = model.setdefault('test_cfg', ConfigDict())
    cap = num_queries * head.get('num_classes', 1)
    test_cfg.max_per_img = min(test_cfg.get('max_per_img', cap), cap)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if loader is None:
            continue
        loader.batch_size = batch_size
        loader.num_workers = 0
        loader.persistent_workers = False
        set_pipeline_size(find_pipeline(loader.dataset), image_size)
    for hook in cfg.get('custom_hooks', []):
        if 'infer_pipeline' in hook:  # PriorUpdateHook's inference pass
            set_pipeline_size(hook.infer_pipeline, image_size)
    return cfg


def _shrink_backbone(model: ConfigDict, depth: int) -> None:
    backbone = model.backbone
    backbone.init_cfg = None
    if backbone.type != 'ResNet':
        return
    backbone.depth = depth
    out_indices = backbone.get('out_indices', (0, 1, 2, 3))
    width = backbone.get('base_channels', 64) / 64
    if 'neck' in model and 'in_channels' in model.neck:
        model.neck.in_channels = [
            int(RESNET_CHANNELS[depth][i] * width) for i in out_indices
        ]


def set_embed_dims(node, embed_dims: int) -> None:
    """Set every ``embed_dims`` / ``feedforward_channels`` under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'embed_dims':
                node[key] = embed_dims
            elif key == 'feedforward_channels':
                node[key] = 2 * embed_dims
            else:
                set_embed_dims(value, embed_dims)
    elif isinstance(node, (list, tuple)):
        for item in node:
            set_embed_dims(item, embed_dims)


def tiny_data_config(cfg: Config,
                     coco_root: str,
                     imagenet_root: str = '',
                     num_images: int = 2,
                     work_dir: str = '') -> Config:
    """A copy of ``cfg`` whose every dataset reads tiny local data.

    For walking every config of the repo on a CPU: datasets keep their
    type, only where they read changes.

    - COCO-format datasets (labeled ``CocoDataset`` or
      ``UnlabeledCocoDataset``) read ``coco_root/annotations.json`` and
      ``coco_root/images/`` (:func:`make_shapes_coco`), labeled ones with
      its classes (a labeled detector's head predicts them); evaluators
      read the same json;
    - ``ImageNetTreeDataset`` reads ``imagenet_root/train/<wnid>/`` with
      the classes found there;
    - every dataset is cut to its first ``num_images`` images, wrappers
      that repeat data repeat once; ``load_from`` and ``resume`` are
      cleared (nothing to download); ``work_dir`` is set.

    Returns:
        Config: The copy; ``cfg`` is unchanged.
    """
    from .shapes_coco import SHAPES_CLASSES
    cfg = copy.deepcopy(cfg)
    ann = 'annotations.json'

    def redirect(dataset: ConfigDict) -> None:
        kind = dataset.get('type')
        if 'dataset' in dataset:  # a wrapper
            if 'times' in dataset:
                dataset.times = 1
            redirect(dataset.dataset)
            return
        if kind == 'ImageNetTreeDataset':
            dataset.data_root = imagenet_root
            dataset.data_prefix = dict(img='train')
            dataset.classes = None
        else:
            dataset.data_root = coco_root
            dataset.ann_file = ann
            dataset.data_prefix = dict(img='images/')
            if kind != 'UnlabeledCocoDataset':
                dataset.metainfo = dict(classes=SHAPES_CLASSES)
        dataset.indices = num_images

    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key) is not None:
            redirect(cfg[key].dataset)
    head = cfg.get('model', {}).get('bbox_head', {})
    if head.get('num_classes', 1) > 1:  # a labeled detector: the shapes'
        head.num_classes = len(SHAPES_CLASSES)
        test_cfg = cfg.model.get('test_cfg', {})
        if 'max_per_img' in test_cfg and 'num_queries' in cfg.model:
            test_cfg.max_per_img = min(
                test_cfg.max_per_img,
                cfg.model.num_queries * len(SHAPES_CLASSES))
    for key in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(key)
        if evaluators is None:
            continue
        for evaluator in (evaluators
                          if isinstance(evaluators, list) else [evaluators]):
            if 'ann_file' in evaluator:
                evaluator.ann_file = osp.join(coco_root, ann)
    cfg.load_from = None
    cfg.resume = False
    if work_dir:
        cfg.work_dir = work_dir
    return cfg
