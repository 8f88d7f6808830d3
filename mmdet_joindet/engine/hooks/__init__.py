# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .epoch_seed_hook import EpochSeedHook
from .export_backbone_hook import ExportBackboneHook
from .load_from_check_hook import LoadFromCheckHook
from .prior_update_hook import PriorUpdateHook

__all__ = [
    'EpochSeedHook', 'ExportBackboneHook', 'LoadFromCheckHook',
    'PriorUpdateHook'
]
