# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Helpers for tests and smoke runs: tiny data, tiny configs, checked
subprocess runs."""
from .shapes_coco import SHAPES_CLASSES, make_shapes_coco
from .subprocess_run import run_checked
from .tiny_config import tiny_data_config, tiny_detr_config

__all__ = [
    'SHAPES_CLASSES', 'make_shapes_coco', 'run_checked', 'tiny_data_config',
    'tiny_detr_config'
]
