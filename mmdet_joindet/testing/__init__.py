# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Helpers for tests and smoke runs: tiny data and tiny configs."""
from .shapes_coco import SHAPES_CLASSES, make_shapes_coco
from .tiny_config import tiny_detr_config

__all__ = ['SHAPES_CLASSES', 'make_shapes_coco', 'tiny_detr_config']
