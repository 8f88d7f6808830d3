# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""One image's prior update ``R_n <- BS(R_n, R_{n-1})`` and its ablations.

Paper Sec. 2.3 (Box Smooth Module) and Sec. 4, Table 6 (updating by direct
replacement or by NMS instead).
"""
from typing import Optional, Tuple, Union

import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

from .box_smooth import box_smooth

UPDATE_MODES = ('box_smooth', 'direct', 'nms', 'fixed')
ArrayOrTensor = Union[np.ndarray, torch.Tensor]


def update_priors(prev: Tuple[Tensor, Tensor],
                  cur: Tuple[Tensor, Tensor],
                  mode: str = 'box_smooth',
                  momentum: float = 0.45,
                  iou_thr: float = 0.55,
                  max_priors: Optional[int] = 30) -> Tuple[Tensor, Tensor]:
    """The next round of one image's priors.

    Args:
        prev (tuple[Tensor]): ``R_{n-1}``: boxes float ``[T, 4]`` xyxy and
            scores ``[T]`` (as the store reads them, any device).
        cur (tuple[Tensor]): ``R_n = P^r ++ P^i`` of this round, same layout.
        mode (str): ``'box_smooth'`` (eq. 8, the paper's), ``'direct'``
            (replace by ``R_n``), ``'nms'`` (keep the previous priors that
            no current prior overlaps with IoU > ``iou_thr``, plus every
            current prior) or ``'fixed'`` (keep ``R_{n-1}``).
        momentum (float): ``m`` of eq. 8.
        iou_thr (float): Cluster IoU of Box Smooth; overlap of ``'nms'``.
        max_priors (int, optional): Keep the highest-scoring ones (ties:
            larger box first). None keeps all.

    Returns:
        tuple[Tensor]: boxes float32 ``[K, 4]``, scores float32 ``[K]``,
        highest score first, on ``cur``'s device.
    """
    if mode not in UPDATE_MODES:
        raise ValueError(f'unknown prior update mode {mode!r}; choose from '
                         f'{UPDATE_MODES}')
    device = cur[0].device
    prev_b, prev_s = (
        torch.as_tensor(x, dtype=torch.float32, device=device) for x in prev)
    cur_b, cur_s = (torch.as_tensor(x, dtype=torch.float32) for x in cur)
    prev_b, cur_b = prev_b.reshape(-1, 4), cur_b.reshape(-1, 4)
    if mode == 'box_smooth':
        boxes, scores = box_smooth(prev_b, prev_s, cur_b, cur_s, momentum,
                                   iou_thr)
    elif mode == 'direct':
        boxes, scores = cur_b, cur_s
    elif mode == 'fixed':
        boxes, scores = prev_b, prev_s
    else:
        if len(prev_b) and len(cur_b):
            keep = bbox_overlaps(prev_b, cur_b).amax(1) <= iou_thr
        else:
            keep = torch.ones(len(prev_b), dtype=torch.bool, device=device)
        boxes = torch.cat([cur_b, prev_b[keep]])
        scores = torch.cat([cur_s, prev_s[keep]])
    return cap_priors(boxes, scores, max_priors)


def cap_priors(boxes: ArrayOrTensor, scores: ArrayOrTensor,
               max_priors: Optional[int]) -> Tuple[ArrayOrTensor, ...]:
    """Sort priors by score (ties: larger area first, then input order) and
    keep at most ``max_priors``: the one ordering of priors everywhere (the
    generators, the update, the loader).

    Args:
        boxes: xyxy ``[N, 4]``, a tensor (any device) or an array.
        scores: ``[N]``, of the same kind.
        max_priors (int, optional): None keeps all.

    Returns:
        tuple: float32 ``[K, 4]`` and ``[K]``, of the input's kind (and
        device).
    """
    as_numpy = not isinstance(boxes, torch.Tensor)
    b = torch.as_tensor(np.asarray(boxes, np.float32) if as_numpy else boxes)
    b = b.float().reshape(-1, 4)
    s = torch.as_tensor(np.asarray(scores, np.float32) if as_numpy else scores)
    s = s.to(b.device, torch.float32).reshape(-1)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    # Lexicographic (score, area, index) order from two stable sorts: the
    # secondary key first.
    order = torch.argsort(area, descending=True, stable=True)
    order = order[torch.argsort(s[order], descending=True, stable=True)]
    order = order[:max_priors]
    b, s = b[order], s[order]
    return (b.numpy(), s.numpy()) if as_numpy else (b, s)
