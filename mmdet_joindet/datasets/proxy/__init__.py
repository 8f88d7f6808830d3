# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Proxy detection data built offline (issue 6): digits on photographs."""
from .builder import DIGIT_CLASSES, build_proxy_dataset

__all__ = ['DIGIT_CLASSES', 'build_proxy_dataset']
