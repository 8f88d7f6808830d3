# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .joindet_head import JoinDetHead, focal_decision_threshold

__all__ = ['JoinDetHead', 'focal_decision_threshold']
