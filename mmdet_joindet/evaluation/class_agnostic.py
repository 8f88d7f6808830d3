# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Class-agnostic COCO evaluation: every class merged into "object".

One definition of AP and AR for everything the package scores without
classes: a pretrained JoinDet's own 2-way predictions (paper, Table 4),
the object priors of each round, and the DETReg / UP-DETR baselines'
priors. It is pycocotools' ``COCOeval`` with ``params.useCats = 0`` (the
setting DETReg evaluates with): per image, detections sorted by score,
cut at ``maxDets``, each matched greedily to the best-overlapping ground
truth box not yet matched (one-to-one), crowd boxes ignored.

The figures are read from ``COCOeval.eval`` the way
``COCOeval.summarize`` reads them (mean over the IoU thresholds and
recall points that are defined, ``-1`` where there is no ground truth),
but for any ``max_dets`` (``summarize`` only knows 1 / 10 / 100).
"""
import contextlib
import io
from typing import Dict, List, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = [
    'class_agnostic_eval', 'box_recall', 'boxes_to_coco', 'COCO_IOU_THRS'
]

COCO_IOU_THRS = np.linspace(0.5, 0.95, 10)
_AREAS = ('all', 'small', 'medium', 'large')


def _mean_defined(x: np.ndarray) -> float:
    x = x[x > -1]
    return float(x.mean()) if x.size else -1.0


def _check_max_dets(max_dets: Sequence[int]) -> List[int]:
    max_dets = [int(k) for k in max_dets]
    if not max_dets or any(k < 1 for k in max_dets) \
            or sorted(set(max_dets)) != max_dets:
        raise ValueError('max_dets must be increasing positive integers, '
                         f'got {max_dets!r}')
    return max_dets


def class_agnostic_eval(
        coco_gt: COCO,
        dets: List[dict],
        max_dets: Sequence[int] = (1, 10, 100),
        iou_thrs: Optional[Sequence[float]] = None,
        img_ids: Optional[Sequence[int]] = None) -> Dict[str, float]:
    """COCO AP / AR of ``dets`` against ``coco_gt`` with classes merged.

    Args:
        coco_gt (COCO): Ground truth (any categories: they are ignored).
        dets (list[dict]): COCO result entries ``image_id``, ``bbox``
            (x, y, w, h in original-image pixels), ``score``, and any
            ``category_id`` (ignored). May be empty.
        max_dets (Sequence[int]): Increasing detections-per-image cuts.
        iou_thrs (Sequence[float], optional): IoU thresholds; defaults to
            COCO's 0.50:0.05:0.95. AP50 / AP75 / AR50 need 0.5 / 0.75 in
            them (they are omitted otherwise).
        img_ids (Sequence[int], optional): The images to evaluate; all
            images of ``coco_gt`` by default (an image without detection
            counts its ground truth as missed).

    Returns:
        dict[str, float]: ``mAP``, ``mAP_50``, ``mAP_75``, ``mAP_s``,
        ``mAP_m``, ``mAP_l`` at ``max_dets[-1]`` detections per image;
        ``AR@k`` (averaged over ``iou_thrs``) and ``AR50@k`` (IoU 0.5) for
        every ``k`` in ``max_dets``; ``AR_s@K``, ``AR_m@K``, ``AR_l@K``
        for ``K = max_dets[-1]``. Values in [0, 1]; ``-1`` where the
        images hold no (non-crowd) ground truth box of that size.
    """
    max_dets = _check_max_dets(max_dets)
    thrs = np.asarray(
        COCO_IOU_THRS if iou_thrs is None else iou_thrs, dtype=np.float64)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' chatter
        if dets:
            coco_dt = coco_gt.loadRes(list(dets))
        else:  # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = dict(
                images=list(coco_gt.dataset.get('images', [])),
                categories=list(coco_gt.dataset.get('categories', [])),
                annotations=[])
            coco_dt.createIndex()
        coco_eval = COCOeval(coco_gt, coco_dt, 'bbox')
        coco_eval.params.useCats = 0
        coco_eval.params.maxDets = max_dets
        coco_eval.params.iouThrs = thrs
        if img_ids is not None:
            coco_eval.params.imgIds = list(img_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
    # precision [T, R, K=1, A, M], recall [T, K=1, A, M]
    precision = coco_eval.eval['precision'][:, :, 0]
    recall = coco_eval.eval['recall'][:, 0]
    t50 = np.flatnonzero(np.isclose(thrs, 0.5))
    t75 = np.flatnonzero(np.isclose(thrs, 0.75))
    out = {'mAP': _mean_defined(precision[:, :, 0, -1])}
    if t50.size:
        out['mAP_50'] = _mean_defined(precision[t50, :, 0, -1])
    if t75.size:
        out['mAP_75'] = _mean_defined(precision[t75, :, 0, -1])
    for a, area in enumerate(_AREAS[1:], 1):
        out[f'mAP_{area[0]}'] = _mean_defined(precision[:, :, a, -1])
    for m, k in enumerate(max_dets):
        out[f'AR@{k}'] = _mean_defined(recall[:, 0, m])
        if t50.size:
            out[f'AR50@{k}'] = _mean_defined(recall[t50, 0, m])
    for a, area in enumerate(_AREAS[1:], 1):
        out[f'AR_{area[0]}@{max_dets[-1]}'] = _mean_defined(recall[:, a, -1])
    return out


def boxes_to_coco(gt_boxes: Sequence[np.ndarray],
                  img_ids: Optional[Sequence[int]] = None) -> COCO:
    """A one-category COCO ground truth from per-image box arrays.

    Args:
        gt_boxes (Sequence[np.ndarray]): Per image, float ``[G, 4]`` xyxy
            boxes (any pixel unit, the same as the detections').
        img_ids (Sequence[int], optional): The images' ids; ``0..N-1`` by
            default.
    """
    if img_ids is None:
        img_ids = range(len(gt_boxes))
    images, annotations = [], []
    for img_id, boxes in zip(img_ids, gt_boxes):
        images.append(dict(id=int(img_id)))
        for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
            w, h = x2 - x1, y2 - y1
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=int(img_id),
                    category_id=1,
                    bbox=[x1, y1, w, h],
                    area=w * h,
                    iscrowd=0))
    coco = COCO()
    coco.dataset = dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=1, name='object')])
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def boxes_to_dets(boxes: Sequence[np.ndarray],
                  scores: Optional[Sequence[np.ndarray]],
                  img_ids: Sequence[int]) -> List[dict]:
    """COCO result entries from per-image xyxy boxes, in the given order.

    Without ``scores`` the rank is the score (the first box highest);
    equal scores keep the given order (``COCOeval`` sorts stably).
    """
    dets = []
    for i, img_id in enumerate(img_ids):
        b = np.asarray(boxes[i], np.float64).reshape(-1, 4)
        s = (
            np.asarray(scores[i], np.float64).reshape(-1) if scores is not None
            else 1.0 - np.arange(len(b)) / (len(b) + 1.0))
        if len(s) != len(b):
            raise ValueError(f'image {img_id}: {len(b)} boxes but '
                             f'{len(s)} scores')
        for (x1, y1, x2, y2), score in zip(b, s):
            dets.append(
                dict(
                    image_id=int(img_id),
                    category_id=1,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    score=float(score)))
    return dets


def box_recall(gt_boxes: Sequence[np.ndarray],
               boxes: Sequence[np.ndarray],
               scores: Optional[Sequence[np.ndarray]] = None,
               max_dets: Sequence[int] = (1, 10, 30, 100),
               iou_thrs: Optional[Sequence[float]] = None) -> Dict[str, float]:
    """Class-agnostic AP / AR of per-image boxes (priors, proposals).

    Args:
        gt_boxes (Sequence[np.ndarray]): Per image, ``[G, 4]`` xyxy ground
            truth.
        boxes (Sequence[np.ndarray]): Per image (same order), ``[K, 4]``
            xyxy boxes in the same unit, best first when ``scores`` is
            None.
        scores (Sequence[np.ndarray], optional): Per image, ``[K]``.
        max_dets, iou_thrs: As :func:`class_agnostic_eval`.

    Returns:
        dict[str, float]: As :func:`class_agnostic_eval`.
    """
    if len(gt_boxes) != len(boxes):
        raise ValueError(f'{len(gt_boxes)} images of ground truth but '
                         f'{len(boxes)} of boxes')
    img_ids = list(range(len(gt_boxes)))
    coco = boxes_to_coco(gt_boxes, img_ids)
    return class_agnostic_eval(coco, boxes_to_dets(boxes, scores, img_ids),
                               max_dets, iou_thrs)
