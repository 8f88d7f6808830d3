# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .joindet_head import JoinDetHead

__all__ = ['JoinDetHead']
