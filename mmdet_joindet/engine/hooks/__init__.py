# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .prior_update_hook import PriorUpdateHook

__all__ = ['PriorUpdateHook']
