# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Class-agnostic evaluation (pycocotools ``useCats=0``): a metric for
mmengine's evaluators and the functions that score boxes without one."""
from .class_agnostic import (COCO_IOU_THRS, box_recall, boxes_to_coco,
                             class_agnostic_eval)
from .class_agnostic_coco_metric import ClassAgnosticCocoMetric
from .prior_scoring import (PRIOR_MAX_DETS, coco_gt_in_store_order,
                            score_prior_rounds)

__all__ = [
    'ClassAgnosticCocoMetric', 'class_agnostic_eval', 'box_recall',
    'boxes_to_coco', 'COCO_IOU_THRS', 'score_prior_rounds',
    'coco_gt_in_store_order', 'PRIOR_MAX_DETS'
]
