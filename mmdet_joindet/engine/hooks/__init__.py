# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .export_backbone_hook import ExportBackboneHook
from .prior_update_hook import PriorUpdateHook

__all__ = ['ExportBackboneHook', 'PriorUpdateHook']
