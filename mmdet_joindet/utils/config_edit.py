# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Edits of mmdet configs that tools and tests make alike."""
from typing import Sequence, Tuple

from mmengine.config import ConfigDict

__all__ = ['find_pipeline', 'set_pipeline_size']


def find_pipeline(dataset: ConfigDict) -> Sequence:
    """The pipeline of a dataset config, through wrappers."""
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset
    return dataset.get('pipeline', [])


def set_pipeline_size(pipeline: Sequence, image_size: Tuple[int, int]) -> None:
    """Set every resize and crop of ``pipeline`` to ``image_size`` (h, w),
    in place: ``Resize``/``RandomResize`` scales (their ratio ranges
    stay), ``RandomChoiceResize`` to that one scale, absolute crops to the
    size and ranged crops to half of it up to it, DETR's ``RandomChoice``
    branches alike."""
    h, w = image_size
    for t in pipeline:
        kind = t.get('type')
        if kind in ('Resize', 'RandomResize'):
            t.scale = (w, h)
        elif kind == 'RandomChoiceResize':
            t.scales = [(w, h)]
        elif kind == 'RandomCrop':
            t.crop_size = ((h, w) if t.get('crop_type') == 'absolute' else
                           (min(h, w) // 2, min(h, w)))
        elif kind == 'RandomChoice':  # DETR's multi-scale branches
            for branch in t.transforms:
                set_pipeline_size(branch, image_size)
