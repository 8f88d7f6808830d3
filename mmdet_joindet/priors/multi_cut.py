# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Several normalized cuts per image (an option past the paper).

JoinDet's region priors come from one normalized cut per image (Sec. 2.1):
one foreground, whose connected regions are boxed; objects that touch or
fall on the background side of that one bipartition are lost. MaskCut
(CutLER, Wang et al. 2023) finds more objects by cutting again: after a
cut, the foreground's cells leave the graph and the remaining cells are
cut anew, up to a number of cuts. Each cut here is exactly TokenCut's cut
(:func:`eigen_attention_map`, sign-corrected, threshold at the mean) of
the graph restricted to the cells no earlier cut took: the valid mask of
the next cut is the previous one minus the foreground just found, and the
whole batch is cut at once.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .eigen import eigen_attention_map
from .region import foreground_mask

__all__ = ['multi_cut']


def multi_cut(feats: Tensor,
              valid: Optional[Tensor] = None,
              num_cuts: int = 3,
              tau: float = 0.2,
              eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """Up to ``num_cuts`` foregrounds per image, each cut of what is left.

    Args:
        feats (Tensor): Float ``[B, C, h, w]`` features.
        valid (Tensor, optional): Bool ``[B, h, w]``, False on padding.
        num_cuts (int): Cuts per image (1: the paper's single cut).
        tau, eps: As :func:`eigen_attention_map`.

    Returns:
        tuple[Tensor, Tensor]: ``maps`` float ``[B, num_cuts, h, w]`` (cut
        ``k``'s eigen attention map over the cells it cut; the cells taken
        by earlier cuts and padding hold a value below its valid mean) and
        ``masks`` bool ``[B, num_cuts, h, w]``: the disjoint foregrounds,
        cut ``k``'s ``foreground_mask`` of its own map. An image with fewer
        than two cells left, or whose graph has no cut, gets empty
        foregrounds from then on.
    """
    if isinstance(num_cuts, bool) or not isinstance(num_cuts, int) \
            or num_cuts < 1:
        raise ValueError(f'num_cuts must be an int >= 1, got {num_cuts!r}')
    B, _, h, w = feats.shape
    if valid is None:
        valid = feats.new_ones((B, h, w), dtype=torch.bool)
    left = valid.to(feats.device).clone()
    maps, masks = [], []
    for _ in range(num_cuts):
        cut_map = eigen_attention_map(feats, left, tau, eps)
        fg = foreground_mask(cut_map, left)
        maps.append(cut_map)
        masks.append(fg)
        left = left & ~fg
        if not fg.any():  # no image found anything new: the rest are empty
            for _ in range(num_cuts - len(masks)):
                maps.append(cut_map)
                masks.append(torch.zeros_like(fg))
            break
    return torch.stack(maps, 1), torch.stack(masks, 1)
