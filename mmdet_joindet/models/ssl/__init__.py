# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Self-supervised pretraining of the backbone that gives region priors."""
from .base import BaseTwoViewModel
from .dense_swav import DenseSwAV, matching_grid, sinkhorn
from .multi_view_data_preprocessor import MultiViewDataPreprocessor

__all__ = [
    'BaseTwoViewModel', 'DenseSwAV', 'MultiViewDataPreprocessor',
    'matching_grid', 'sinkhorn'
]
