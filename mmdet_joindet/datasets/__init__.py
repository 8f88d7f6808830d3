# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .image_folder import ImageFolderDataset
from .imagenet_tree import ImageNetTreeDataset
from .prior_reader import PriorReader
from .prior_store import PriorRound, PriorStore
from .self_supervised import PriorInferenceView, SelfSupervisedDataset
from .splits import SPLIT_MODES, draw_labeled_ids, split_coco_dict
from .transforms import (CopyPasteSmallPriors, GenerateImagePriors,
                         ImageSkippedWarning, LoadImageSafely, LoadPriors,
                         TwoViews)
from .unlabeled_coco import UnlabeledCocoDataset

__all__ = [
    'PriorStore', 'PriorReader', 'PriorRound', 'ImageFolderDataset',
    'ImageNetTreeDataset', 'UnlabeledCocoDataset', 'SelfSupervisedDataset',
    'PriorInferenceView', 'LoadImageSafely', 'ImageSkippedWarning',
    'LoadPriors', 'GenerateImagePriors', 'CopyPasteSmallPriors', 'TwoViews',
    'SPLIT_MODES', 'draw_labeled_ids', 'split_coco_dict'
]
