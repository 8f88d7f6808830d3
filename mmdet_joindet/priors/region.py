# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Region priors and the Instance Generation Module of JoinDet.

JoinDet (NeurIPS 2022), Sec. 2.1: the eigen attention map of an image is
thresholded at its mean (foreground = cells above the mean, eq. 2) and the
minimum bounding rectangle of every connected foreground region is one
region prior. Sec. 2.2, eq. 6: a predicted box is kept as an instance prior
when the fraction of foreground cells among the cells it covers exceeds
``t = 0.5``.

All boxes here are ``(x1, y1, x2, y2)`` in cell units of the map's grid:
cell ``(i, j)`` (row ``i``, column ``j``) covers ``[j, j + 1) x [i, i + 1)``
and its centre is ``(j + 0.5, i + 0.5)``.
"""
from typing import List, Optional

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

# 4-connectivity inside one image and no connection across the batch axis.
_CROSS_2D = ndimage.generate_binary_structure(2, 1)
_CROSS_3D = np.stack(
    [np.zeros_like(_CROSS_2D), _CROSS_2D,
     np.zeros_like(_CROSS_2D)])


def foreground_mask(eigen_map: Tensor,
                    valid: Optional[Tensor] = None) -> Tensor:
    """Foreground cells of eigen attention maps (JoinDet Sec. 2.1, eq. 2).

    A cell is foreground when its value exceeds the mean of the map over the
    image's valid (non-padded) cells (eq. 2 averages over the whole map; a
    batch padded to a common size must leave the padding out).

    Args:
        eigen_map (Tensor): Float ``[B, h, w]`` eigen attention maps.
        valid (Tensor, optional): Bool ``[B, h, w]``, False on padded cells.
            None means every cell is valid.

    Returns:
        Tensor: Bool ``[B, h, w]`` on ``eigen_map``'s device; False on
        padded cells and everywhere in an image without a valid cell.

    Raises:
        ValueError: On bad shapes or dtypes, a NaN anywhere in the map, or
            an infinite value on a valid cell (padded cells may hold -inf).
    """
    if eigen_map.dim() != 3 or not eigen_map.is_floating_point():
        raise ValueError('eigen_map must be a float [B, h, w] tensor, got '
                         f'{eigen_map.dtype} {tuple(eigen_map.shape)}')
    if valid is None:
        valid = torch.ones_like(eigen_map, dtype=torch.bool)
    elif valid.dtype != torch.bool or valid.shape != eigen_map.shape:
        raise ValueError('valid must be a bool tensor shaped like eigen_map '
                         f'{tuple(eigen_map.shape)}, got {valid.dtype} '
                         f'{tuple(valid.shape)}')
    valid = valid.to(eigen_map.device)
    bad = eigen_map.isnan() | (eigen_map.isinf() & valid)
    bad_images = bad.flatten(1).any(1)
    if bad_images.any():
        raise ValueError('eigen_map holds NaN (or inf on a valid cell) in '
                         f'image(s) {bad_images.nonzero()[:, 0].tolist()}')
    zero = eigen_map.new_zeros(())
    total = torch.where(valid, eigen_map, zero).flatten(1).sum(1)
    count = valid.flatten(1).sum(1).clamp(min=1)
    mean = total / count
    return (eigen_map > mean[:, None, None]) & valid


def _check_mask(fg_mask: Tensor, dim: int, name: str) -> None:
    if fg_mask.dim() != dim or fg_mask.dtype != torch.bool:
        shape = '[h, w]' if dim == 2 else '[B, h, w]'
        raise ValueError(f'{name} must be a bool {shape} tensor, got '
                         f'{fg_mask.dtype} {tuple(fg_mask.shape)}')


def region_boxes(fg_mask: Tensor) -> Tensor:
    """Region priors of one foreground mask (JoinDet Sec. 2.1, eq. 2).

    One box per 4-connected foreground component (``scipy.ndimage.label``
    with its default structure): its minimum bounding rectangle.

    Args:
        fg_mask (Tensor): Bool ``[h, w]`` foreground mask.

    Returns:
        Tensor: Float32 ``[K, 4]`` boxes ``(x1, y1, x2, y2)`` in cell units
        on ``fg_mask``'s device: ``x1, y1`` = first column / row of the
        component, ``x2, y2`` = its last column / row + 1. Components come
        in label order (raster order of their first cell); ``[0, 4]`` for an
        empty mask.
    """
    _check_mask(fg_mask, 2, 'fg_mask')
    return batched_region_boxes(fg_mask[None])[0]


def batched_region_boxes(fg_masks: Tensor) -> List[Tensor]:
    """:func:`region_boxes` for a batch, labelled in one scipy call.

    Args:
        fg_masks (Tensor): Bool ``[B, h, w]`` foreground masks.

    Returns:
        list[Tensor]: ``B`` float32 ``[K_i, 4]`` tensors, each equal to
        ``region_boxes(fg_masks[i])``.
    """
    _check_mask(fg_masks, 3, 'fg_masks')
    device = fg_masks.device
    num_images = fg_masks.shape[0]
    labels, num = ndimage.label(fg_masks.cpu().numpy(), structure=_CROSS_3D)
    slices = ndimage.find_objects(labels) if num else []
    # Every component lies in a single image: slice 0 gives its index.
    rows = np.array(
        [[s[0].start, s[2].start, s[1].start, s[2].stop, s[1].stop]
         for s in slices],
        dtype=np.int64).reshape(-1, 5)
    counts = np.bincount(rows[:, 0], minlength=num_images).tolist()
    # Labels follow raster order over (image, row, column), so each image's
    # boxes are contiguous and in its own label order.
    boxes = torch.from_numpy(rows[:, 1:].astype(np.float32)).to(device)
    return list(boxes.split(counts))


def instance_keep(boxes: Tensor, fg_mask: Tensor, thr: float = 0.5) -> Tensor:
    """Instance Generation Module test (JoinDet Sec. 2.2, eq. 6).

    A cell ``(i, j)`` is inside a box when its centre ``(j + 0.5, i + 0.5)``
    lies in ``[x1, x2) x [y1, y2)``, i.e. for columns
    ``ceil(x1 - 0.5) <= j < ceil(x2 - 0.5)`` (and likewise for rows). A box
    is kept when ``N_f / N_t > thr``, with ``N_t`` the cells inside it and
    ``N_f`` the foreground cells among them; never when ``N_t = 0``. Counts
    come from an integral image, so the cost is O(h * w + K).

    Args:
        boxes (Tensor): Float ``[K, 4]`` boxes ``(x1, y1, x2, y2)`` in cell
            units; they may be fractional, reach outside the grid or be
            degenerate (``x2 <= x1``: no cell inside).
        fg_mask (Tensor): Bool ``[h, w]`` foreground mask.
        thr (float): The threshold ``t``. Defaults to 0.5 (the paper's).

    Returns:
        Tensor: Bool ``[K]`` on ``boxes``' device.
    """
    _check_mask(fg_mask, 2, 'fg_mask')
    if (boxes.dim() != 2 or boxes.shape[1] != 4
            or not boxes.is_floating_point()):
        raise ValueError('boxes must be a float [K, 4] tensor, got '
                         f'{boxes.dtype} {tuple(boxes.shape)}')
    if boxes.isnan().any():
        raise ValueError('boxes hold NaN')
    device = boxes.device
    h, w = fg_mask.shape
    # Float32 at least: x - 0.5 is then exact for every x >= 0.
    coords = boxes.to(torch.promote_types(boxes.dtype, torch.float32))
    limits = coords.new_tensor([w, h, w, h])
    idx = (coords - 0.5).ceil().clamp(min=0).minimum(limits).long()
    c0, r0, c1, r1 = idx.unbind(1)
    c1 = c1.maximum(c0)
    r1 = r1.maximum(r0)
    # integral[r, c] = foreground cells in rows < r and columns < c.
    integral = fg_mask.to(device=device, dtype=torch.long).cumsum(0).cumsum(1)
    integral = torch.nn.functional.pad(integral, (1, 0, 1, 0))
    num_fg = (
        integral[r1, c1] - integral[r0, c1] - integral[r1, c0] +
        integral[r0, c0])
    num_total = (r1 - r0) * (c1 - c0)
    ratio = num_fg.double() / num_total.clamp(min=1).double()
    return (num_total > 0) & (ratio > thr)
