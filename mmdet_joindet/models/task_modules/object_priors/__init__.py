# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Object-prior generators, registered in mmdet's ``TASK_UTILS``.

One interface (:class:`BaseObjectPriorGenerator`) for the priors of every
pretraining method: JoinDet's region priors (paper Sec. 2.1), DETReg's
selective search and UP-DETR's random crops.
"""
from .base import BaseObjectPriorGenerator
from .eigen_region import EigenRegionPriorGenerator, EigenRegionPriors
from .random_crops import RandomCropPriorGenerator
from .selective_search import SelectiveSearchPriorGenerator

__all__ = [
    'BaseObjectPriorGenerator', 'EigenRegionPriorGenerator',
    'EigenRegionPriors', 'RandomCropPriorGenerator',
    'SelectiveSearchPriorGenerator'
]
