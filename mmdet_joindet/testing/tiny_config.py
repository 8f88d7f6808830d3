# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Shrink any DETR-family config into one that runs in seconds on a CPU."""
import copy
from typing import Sequence, Tuple

from mmengine.config import Config, ConfigDict

RESNET_CHANNELS = {18: (64, 128, 256, 512), 34: (64, 128, 256, 512)}


def tiny_detr_config(cfg: Config,
                     depth: int = 18,
                     embed_dims: int = 32,
                     num_queries: int = 10,
                     num_layers: int = 1,
                     image_size: Tuple[int, int] = (96, 128),
                     batch_size: int = 2) -> Config:
    """A copy of ``cfg`` with a tiny model and tiny, worker-less data.

    - ResNet-``depth`` backbone without pretrained weights
      (``init_cfg=None``: nothing downloads), neck channels to match;
    - ``num_layers`` encoder and decoder layers of ``embed_dims`` channels
      (256 for two-stage models, which mmdet hard-codes);
    - ``num_queries`` queries (``test_cfg.max_per_img`` capped to fit mmdet's
      ``max_per_img <= num_queries * num_classes`` assertion);
    - every resize/crop of every pipeline set to ``image_size`` (h, w);
      dataloaders with ``batch_size``, no workers.

    Args:
        cfg (Config): A Deformable-DETR-style config (mmdet's or this repo's).

    Returns:
        Config: The shrunk copy; ``cfg`` is unchanged.
    """
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    if model.get('as_two_stage', False):
        # mmdet's two-stage proposal embedding hard-codes 128 features per
        # coordinate pair, i.e. embed_dims 256.
        embed_dims = 256
    _shrink_backbone(model, depth)
    model.num_queries = num_queries
    for part in ('encoder', 'decoder'):
        if part in model:
            model[part].num_layers = num_layers
            set_embed_dims(model[part].layer_cfg, embed_dims)
    if 'positional_encoding' in model:
        model.positional_encoding.num_feats = embed_dims // 2
    if 'neck' in model:
        model.neck.out_channels = embed_dims
        if 'num_groups' in model.neck.get('norm_cfg', {}):
            model.neck.norm_cfg.num_groups = min(
                model.neck.norm_cfg.num_groups, embed_dims // 4)
    head = model.bbox_head
    head.embed_dims = embed_dims
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
        _shrink_pipeline(_find_pipeline(loader.dataset), image_size)
    return cfg


def _shrink_backbone(model: ConfigDict, depth: int) -> None:
    backbone = model.backbone
    backbone.init_cfg = None
    if backbone.type != 'ResNet':
        return
    backbone.depth = depth
    out_indices = backbone.get('out_indices', (0, 1, 2, 3))
    if 'neck' in model and 'in_channels' in model.neck:
        model.neck.in_channels = [
            RESNET_CHANNELS[depth][i] for i in out_indices
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


def _find_pipeline(dataset: ConfigDict) -> Sequence:
    """The pipeline of a dataset config, through wrappers."""
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset
    return dataset.get('pipeline', [])


def _shrink_pipeline(pipeline: Sequence, image_size: Tuple[int, int]) -> None:
    h, w = image_size
    for t in pipeline:
        kind = t.get('type')
        if kind == 'Resize':
            t.scale = (w, h)
        elif kind == 'RandomResize':
            t.scale = (w, h)
        elif kind == 'RandomChoiceResize':
            t.scales = [(w, h)]
        elif kind == 'RandomChoice':  # DETR's multi-scale branches
            for branch in t.transforms:
                _shrink_pipeline(branch, image_size)
