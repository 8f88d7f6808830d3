# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Box Smooth Module of JoinDet (NeurIPS 2022, Sec. 2.3, eq. 8).

The object priors of the previous round, ``R_{n-1}``, and of the current
one, ``R_n``, are clustered by IoU as Weighted Boxes Fusion does (Solovyev
et al., 2021) and every cluster ``k`` with ``T`` previous and ``U`` current
boxes becomes one prior::

    b_k = (sum_i m s_i b_i + sum_j (1 - m) s_j b_j)
          / (sum_i m s_i + sum_j (1 - m) s_j)
    s_k = (sum_i s_i + sum_j s_j) / (T + U)

with momentum ``m`` (0.45 in the paper).
"""
from typing import Tuple

import numpy as np
import torch
from torch import Tensor


def _to_numpy(boxes: Tensor, scores: Tensor,
              name: str) -> Tuple[np.ndarray, np.ndarray]:
    """Validate one side's boxes and scores; return them as float64 numpy."""
    if (boxes.dim() != 2 or boxes.shape[1] != 4
            or not boxes.is_floating_point()):
        raise ValueError(f'{name}_boxes must be a float [N, 4] tensor, got '
                         f'{boxes.dtype} {tuple(boxes.shape)}')
    if (scores.dim() != 1 or scores.shape[0] != boxes.shape[0]
            or not scores.is_floating_point()):
        raise ValueError(f'{name}_scores must be a float [{boxes.shape[0]}] '
                         f'tensor, got {scores.dtype} {tuple(scores.shape)}')
    boxes_np = boxes.detach().cpu().double().numpy()
    scores_np = scores.detach().cpu().double().numpy()
    if not (np.isfinite(boxes_np).all() and np.isfinite(scores_np).all()):
        raise ValueError(f'{name}_boxes or {name}_scores hold non-finite '
                         'values')
    if (boxes_np[:, 2:] < boxes_np[:, :2]).any():
        raise ValueError(f'{name}_boxes must be (x1, y1, x2, y2) with '
                         'x2 >= x1 and y2 >= y1')
    if (scores_np < 0).any():
        raise ValueError(f'{name}_scores must be >= 0')
    return boxes_np, scores_np


def box_smooth(prev_boxes: Tensor,
               prev_scores: Tensor,
               cur_boxes: Tensor,
               cur_scores: Tensor,
               momentum: float = 0.45,
               iou_thr: float = 0.55) -> Tuple[Tensor, Tensor]:
    """Fuse the previous and current object priors (JoinDet eq. 8).

    Clustering follows Weighted Boxes Fusion. Every box gets the weight
    ``w = m`` (previous) or ``1 - m`` (current). Boxes are visited in
    descending order of ``w * s`` (a stable order: ties keep previous boxes
    before current ones, then input order). A box joins the existing cluster
    whose current fused box it overlaps most, when that IoU is
    ``> iou_thr`` (the first such cluster on a tie), else it opens a new
    cluster; the joined cluster's fused box is then recomputed as
    ``sum(w s b) / sum(w s)``. Output boxes and scores follow eq. 8.

    Boxes with ``w * s = 0`` (score 0, previous boxes when ``m = 0``,
    current ones when ``m = 1``) are visited last and still cluster: one that
    joins a cluster counts in its score mean but does not move its box.
    A cluster whose ``sum(w s)`` is 0 has no eq. 8 box: it keeps its first
    box for matching and is dropped from the output. Hence ``m = 1`` never
    updates the boxes (the result is the previous boxes' own clusters, the
    previous boxes themselves when no two of them overlap above
    ``iou_thr``), and ``m = 0`` replaces them (the result is the current
    boxes' own clusters). Scores are always the plain cluster means of
    eq. 8, so zero-weight members still lower or raise them.

    A zero-area box has IoU 0 with everything, so it never joins a cluster.

    The greedy loop is sequential: it runs on the CPU in float64 numpy (about
    5 ms for 300 + 300 boxes) and its outputs carry no gradient.

    Args:
        prev_boxes (Tensor): Float ``[T, 4]`` previous boxes
            ``(x1, y1, x2, y2)``, any unit shared by all boxes.
        prev_scores (Tensor): Float ``[T]`` their scores, ``>= 0``.
        cur_boxes (Tensor): Float ``[U, 4]`` current boxes, same unit.
        cur_scores (Tensor): Float ``[U]`` their scores, ``>= 0``.
        momentum (float): ``m`` in ``[0, 1]``, the previous boxes' weight.
            Defaults to 0.45 (the paper's).
        iou_thr (float): Cluster IoU threshold in ``[0, 1]``. Defaults to
            0.55 (WBF's default; the paper does not give it).

    Returns:
        tuple[Tensor, Tensor]:

        - boxes (Tensor): ``[K, 4]`` fused boxes ``(x1, y1, x2, y2)`` in the
          input unit.
        - scores (Tensor): ``[K]`` cluster scores, descending (a stable
          sort: ties keep the order in which clusters were opened).

        Both on the inputs' device, boxes in the promoted dtype of the two
        box tensors and scores in that of the two score tensors.
    """
    devices = {
        t.device
        for t in (prev_boxes, prev_scores, cur_boxes, cur_scores)
    }
    if len(devices) != 1:
        raise ValueError(f'all inputs must share one device, got {devices}')
    m = float(momentum)
    if not 0 <= m <= 1:
        raise ValueError(f'momentum must lie in [0, 1], got {momentum}')
    thr = float(iou_thr)
    if not 0 <= thr <= 1:
        raise ValueError(f'iou_thr must lie in [0, 1], got {iou_thr}')

    prev_np, prev_scores_np = _to_numpy(prev_boxes, prev_scores, 'prev')
    cur_np, cur_scores_np = _to_numpy(cur_boxes, cur_scores, 'cur')
    boxes = np.concatenate([prev_np, cur_np])
    scores = np.concatenate([prev_scores_np, cur_scores_np])
    weights = np.full(len(boxes), 1 - m)
    weights[:len(prev_np)] = m
    keys = weights * scores
    fused, sum_ws, sum_s, counts = _cluster(boxes, scores, keys, thr)

    keep = sum_ws > 0
    fused, sum_s, counts = fused[keep], sum_s[keep], counts[keep]
    out_scores = sum_s / counts
    order = np.argsort(-out_scores, kind='stable')
    device = prev_boxes.device
    box_dtype = torch.promote_types(prev_boxes.dtype, cur_boxes.dtype)
    score_dtype = torch.promote_types(prev_scores.dtype, cur_scores.dtype)
    return (torch.from_numpy(fused[order]).to(device, box_dtype),
            torch.from_numpy(out_scores[order]).to(device, score_dtype))


def _cluster(boxes: np.ndarray, scores: np.ndarray, keys: np.ndarray,
             thr: float) -> Tuple[np.ndarray, ...]:
    """Greedy WBF clustering, in float64 numpy.

    Args:
        boxes (np.ndarray): ``[N, 4]`` boxes.
        scores (np.ndarray): ``[N]`` scores ``s``.
        keys (np.ndarray): ``[N]`` products ``w * s``.
        thr (float): IoU threshold.

    Returns:
        tuple[np.ndarray]: Per cluster, in opening order: the fused boxes
        ``[K, 4]``, ``sum(w s)`` ``[K]``, ``sum(s)`` ``[K]`` and member
        counts ``[K]``.
    """
    num = len(boxes)
    # Fused boxes as columns, stored as (x2, y2) and (-x1, -y1) so that
    # np.minimum gives the intersection's sides in two calls.
    hi = np.empty((2, num))
    neg_lo = np.empty((2, num))
    area = np.empty(num)
    box_hi = boxes[:, 2:, None]
    box_neg_lo = -boxes[:, :2, None]
    box_areas = ((boxes[:, 2] - boxes[:, 0]) *
                 (boxes[:, 3] - boxes[:, 1])).tolist()
    box_list = boxes.tolist()
    scores_list = scores.tolist()
    keys_list = keys.tolist()
    sum_wsb = [[0.0] * 4 for _ in range(num)]
    sum_ws = [0.0] * num
    sum_s = [0.0] * num
    counts = [0] * num
    num_clusters = 0
    for i in np.argsort(-keys, kind='stable').tolist():
        box_area = box_areas[i]
        best = -1
        if num_clusters and box_area > 0:
            k = num_clusters
            inter = np.minimum(hi[:, :k], box_hi[i])
            inter += np.minimum(neg_lo[:, :k], box_neg_lo[i])
            np.maximum(inter, 0, out=inter)
            inter = inter[0] * inter[1]
            # The union is >= box_area > 0.
            iou = inter / (area[:k] + (box_area - inter))
            best = int(iou.argmax())
            if not iou[best] > thr:
                best = -1
        x1, y1, x2, y2 = box_list[i]
        if best < 0:
            best = num_clusters
            num_clusters += 1
            hi[:, best] = x2, y2
            neg_lo[:, best] = -x1, -y1
            area[best] = box_area
        key = keys_list[i]
        sum_s[best] += scores_list[i]
        counts[best] += 1
        if key > 0:
            acc = sum_wsb[best]
            acc[0] += key * x1
            acc[1] += key * y1
            acc[2] += key * x2
            acc[3] += key * y2
            sum_ws[best] += key
            if counts[best] > 1:
                x1, y1, x2, y2 = [c / sum_ws[best] for c in acc]
                hi[:, best] = x2, y2
                neg_lo[:, best] = -x1, -y1
                area[best] = (x2 - x1) * (y2 - y1)
    k = num_clusters
    fused = np.concatenate([-neg_lo[:, :k], hi[:, :k]]).T
    return (fused, np.array(sum_ws[:k]), np.array(sum_s[:k]),
            np.array(counts[:k], dtype=np.float64))
