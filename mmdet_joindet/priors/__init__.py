# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The paper's prior math (Sec. 2.1-2.3) as pure, batched torch functions.

- region priors (Sec. 2.1, eqs. 1-3): :func:`eigen_attention_map`,
  :func:`foreground_mask`, :func:`region_boxes`; several cuts per image
  (past the paper, as MaskCut): :func:`multi_cut`;
- instance priors (Sec. 2.2, eq. 6): :func:`instance_keep`;
- Box Smooth Module (Sec. 2.3, eq. 8): :func:`box_smooth`.
"""
from .box_smooth import box_smooth
from .eigen import centre_features, eigen_attention_map
from .multi_cut import multi_cut
from .region import (batched_region_boxes, foreground_mask, instance_keep,
                     region_boxes)
from .update import UPDATE_MODES, cap_priors, update_priors

__all__ = [
    'eigen_attention_map', 'centre_features', 'foreground_mask',
    'region_boxes', 'batched_region_boxes', 'instance_keep', 'box_smooth',
    'update_priors', 'cap_priors', 'UPDATE_MODES', 'multi_cut'
]
