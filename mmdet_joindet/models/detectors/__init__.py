# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .joindet import JoinDet, JoinDetPriors

__all__ = ['JoinDet', 'JoinDetPriors']
