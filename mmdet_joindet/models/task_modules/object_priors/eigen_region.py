# Copyright (c) mmdet_joindet contributors. All rights reserved.
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import scale_boxes
from mmdet.utils import InstanceList
from scipy import ndimage
from torch import Tensor

from mmdet_joindet.priors import (batched_region_boxes, centre_features,
                                  eigen_attention_map, foreground_mask,
                                  multi_cut)
from .base import BaseObjectPriorGenerator

# 4-connected inside an image, never across the batch axis (as
# batched_region_boxes labels, so that components come in the same order).
_CROSS_3D = np.zeros((3, 3, 3), dtype=bool)
_CROSS_3D[1] = ndimage.generate_binary_structure(2, 1)


class EigenRegionPriors(NamedTuple):
    """Region priors of a batch with the maps they come from.

    Attributes:
        priors (list[:obj:`InstanceData`]): Per image, ``bboxes`` float32
            ``[K, 4]`` ``(x1, y1, x2, y2)`` in original-image pixels and
            ``scores`` float32 ``[K]`` (all 1.0), as
            :meth:`EigenRegionPriorGenerator.generate` returns them.
        eigen_maps (list[Tensor]): Per image, the float32 eigen attention
            map ``M`` ``[h_i, w_i]`` over the image's valid cells (padding
            cropped away): rows ``< ceil(img_h / stride_h)``, columns
            ``< ceil(img_w / stride_w)``.
        fg_masks (list[Tensor]): Per image, bool ``[h_i, w_i]``: ``M`` above
            its mean (paper eq. 2), the mask that
            :func:`mmdet_joindet.priors.instance_keep` takes.
        stride (tuple[float, float]): ``(stride_w, stride_h)`` of the level
            in resized-image pixels: cell ``(i, j)`` covers
            ``[j * stride_w, (j + 1) * stride_w) x
            [i * stride_h, (i + 1) * stride_h)`` of the network input.
    """
    priors: InstanceList
    eigen_maps: List[Tensor]
    fg_masks: List[Tensor]
    stride: Tuple[float, float]


@TASK_UTILS.register_module()
class EigenRegionPriorGenerator(BaseObjectPriorGenerator):
    """JoinDet's region priors from an eigen attention map.

    JoinDet (NeurIPS 2022), Sec. 2.1, eqs. 1-3: the patch features ``F`` of
    one feature level give the eigen attention map ``M = K(F)`` (TokenCut's
    normalized cut, :func:`mmdet_joindet.priors.eigen_attention_map`); cells
    above the mean of ``M`` are foreground (eq. 2); the minimum bounding
    rectangle of every 4-connected foreground region is one region prior.
    On transformer-encoder features this is ``P^r_n`` (eq. 1); on the frozen
    backbone's features it is the initial supervision ``R_0`` (eq. 3).

    Per batch: pick the level; the valid cells of image ``i`` are rows
    ``< ceil(img_h / stride_h)`` and columns ``< ceil(img_w / stride_w)``,
    with the level's stride ``batch_input_shape / feature size`` per axis
    (the rule by which mmdet's ``DeformableDETR.pre_transformer`` resizes
    its padding masks); optionally centre the features; compute ``M`` for
    the whole batch at once, the foreground masks and the component boxes;
    drop components of fewer than ``min_cells`` cells; map boxes from cell
    units to pixels (``x stride``), clip them to ``img_shape``, undo the
    resize (``/ scale_factor``) and clip them to ``ori_shape``; drop boxes
    left empty by the clipping. Every region prior scores 1.0 (our default:
    the paper gives none), so :meth:`sort_and_cap` keeps the
    ``max_priors`` largest.

    Features after a ReLU (backbone stages, used for ``R_0``) are one-signed:
    nearly all cosine similarities exceed ``tau``, TokenCut's graph is
    complete and there is no cut (no priors). ``centre=True`` subtracts each
    image's mean feature over its valid cells first
    (:func:`mmdet_joindet.priors.centre_features`): set it for backbone
    features whose graph is complete, leave it off for encoder outputs,
    which are not one-signed. It is not free: on features that already
    part objects from background (a ResNet trained with the labels of the
    proxy set) centring removes the background's shared direction, the
    background cells stop resembling each other and the cut is lost
    (class-agnostic recall 22.5% raw, 1.6% centred; ``docs/benchmarks.md``):
    measure both on a new backbone.

    Defaults not given by the paper (our defaults): the coarsest level
    (``level=-1``; stride 32 of ResNet C5), ``tau=0.2`` and ``eps=1e-5``
    (TokenCut), score 1.0, at most 30 priors (DETReg's top 30).

    Args:
        max_priors (int, optional): Most priors per image, largest first.
            None keeps every component (the paper's rule). Defaults to 30.
        level (int): Index of the level in a list of feature maps. Defaults
            to -1 (the last, coarsest in mmdet's necks).
        stride (int, optional): Pick instead the level of this stride: the
            one whose ``batch_input_shape / stride`` is within 1 of its
            size on both axes (so ceil- and floor-rounded sizes both
            match; the closest wins; ties, possible only between 1 x 1
            levels, go to the first). Set ``level`` or ``stride``, not
            both. Defaults to None.
        tau (float): Cosine threshold of an edge. Defaults to 0.2.
        eps (float): Weight of a non-edge. Defaults to 1e-5.
        centre (bool): Centre each image's features over its valid cells
            before the cut. Defaults to False.
        min_cells (int): Drop foreground components of fewer cells.
            Defaults to 1 (keep every component).
        num_cuts (int): Normalized cuts per image (an option past the
            paper, as MaskCut): after each cut its foreground leaves the
            graph and the rest is cut again (:func:`multi_cut`); every
            cut's components are boxed, and the foreground mask returned
            for the instance priors (eq. 6) is the union of the cuts'.
            Defaults to 1 (the paper's single cut).
    """

    input_type = 'features'

    def __init__(self,
                 max_priors: Optional[int] = 30,
                 level: int = -1,
                 stride: Optional[int] = None,
                 tau: float = 0.2,
                 eps: float = 1e-5,
                 centre: bool = False,
                 min_cells: int = 1,
                 num_cuts: int = 1) -> None:
        super().__init__(max_priors=max_priors)
        if stride is not None and level != -1:
            raise ValueError('set level or stride, not both (got level='
                             f'{level}, stride={stride})')
        if stride is not None and not stride > 0:
            raise ValueError(f'stride must be > 0, got {stride}')
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        if isinstance(min_cells, bool) or not isinstance(min_cells, int) \
                or min_cells < 1:
            raise ValueError(f'min_cells must be an int >= 1, got '
                             f'{min_cells!r}')
        if isinstance(num_cuts, bool) or not isinstance(num_cuts, int) \
                or num_cuts < 1:
            raise ValueError(f'num_cuts must be an int >= 1, got '
                             f'{num_cuts!r}')
        self.num_cuts = num_cuts
        self.level = level
        self.stride = stride
        self.tau = tau
        self.eps = eps
        self.centre = centre
        self.min_cells = min_cells

    def generate(self, feats: Union[Tensor, Sequence[Tensor]],
                 batch_img_metas: List[dict]) -> InstanceList:
        """Region priors of a batch (the ``priors`` of
        :meth:`generate_with_maps`).

        Args:
            feats (Tensor | Sequence[Tensor]): Float ``[B, C, h, w]``
                features of one level, or a list of such tensors, one per
                level (the level is picked by ``level`` or ``stride``).
            batch_img_metas (list[dict]): mmdet's metainfo of each image,
                with ``img_shape`` ``(h, w)`` after resize,
                ``batch_input_shape`` ``(H, W)`` after padding,
                ``scale_factor`` ``(w_scale, h_scale)`` (resized / original)
                and ``ori_shape`` ``(h, w)``; ``flip`` must not be True.

        Returns:
            list[:obj:`InstanceData`]: Per image, ``bboxes`` float32
            ``[K, 4]`` ``(x1, y1, x2, y2)`` in original-image pixels and
            ``scores`` float32 ``[K]`` (all 1.0), largest box first,
            ``K <= max_priors``, on ``feats``' device.
        """
        return self.generate_with_maps(feats, batch_img_metas).priors

    @torch.no_grad()
    def generate_with_maps(self, feats: Union[Tensor, Sequence[Tensor]],
                           batch_img_metas: List[dict]) -> EigenRegionPriors:
        """Region priors plus each image's eigen map and foreground mask.

        The maps are what the Instance Generation Module (paper Sec. 2.2)
        needs: predicted boxes in network-input pixels divided by
        ``stride`` lie on their grid, as
        :func:`mmdet_joindet.priors.instance_keep` takes them.

        Args:
            feats (Tensor | Sequence[Tensor]): As :meth:`generate`.
            batch_img_metas (list[dict]): As :meth:`generate`.

        Returns:
            :obj:`EigenRegionPriors`: ``priors``, ``eigen_maps`` (float32
            ``[h_i, w_i]``), ``fg_masks`` (bool ``[h_i, w_i]``), both
            cropped to the image's valid cells, and the level's ``stride``
            ``(stride_w, stride_h)``; tensors on ``feats``' device.
        """
        if batch_img_metas is None:
            raise ValueError(f'{type(self).__name__} needs batch_img_metas')
        for i, meta in enumerate(batch_img_metas):
            if meta.get('flip', False):
                raise ValueError(
                    f'image {i} is flipped (flip=True in its metainfo): '
                    'region priors map boxes back to the original image '
                    'without undoing flips; generate them without flip')
        pad_h, pad_w = _batch_input_shape(batch_img_metas)
        feat = self._select_level(feats, (pad_h, pad_w))
        B, _, h, w = feat.shape
        if B != len(batch_img_metas):
            raise ValueError(f'features hold {B} images but got '
                             f'{len(batch_img_metas)} batch_img_metas')
        stride_w, stride_h = pad_w / w, pad_h / h
        device = feat.device

        # Valid cells: i < ceil(img_h * h / pad_h), in exact integers.
        valid_hw = []
        for meta in batch_img_metas:
            img_h, img_w = _shape(meta, 'img_shape')
            if img_h > pad_h or img_w > pad_w:
                raise ValueError(f'img_shape {(img_h, img_w)} exceeds '
                                 f'batch_input_shape {(pad_h, pad_w)}')
            valid_hw.append((-(-img_h * h // pad_h), -(-img_w * w // pad_w)))
        sizes = torch.tensor(valid_hw, device=device).view(B, 2)
        rows = torch.arange(h, device=device)
        cols = torch.arange(w, device=device)
        valid = ((rows[None, :, None] < sizes[:, 0, None, None])
                 & (cols[None, None, :] < sizes[:, 1, None, None]))

        if self.centre:
            feat = centre_features(feat, valid)
        if self.num_cuts == 1:
            eigen_maps = eigen_attention_map(feat, valid, self.tau, self.eps)
            cut_masks = foreground_mask(eigen_maps, valid)[:, None]
        else:
            cut_maps, cut_masks = multi_cut(feat, valid, self.num_cuts,
                                            self.tau, self.eps)
            eigen_maps = cut_maps[:, 0]
        fg_masks = cut_masks.any(1)
        # every cut's components, cut by cut: [B * num_cuts, h, w]
        flat = cut_masks.flatten(0, 1)
        per_cut = batched_region_boxes(flat)
        if self.min_cells > 1:
            per_cut = self._drop_small(flat, per_cut)
        n = cut_masks.shape[1]
        cell_boxes = [torch.cat(per_cut[i * n:(i + 1) * n]) for i in range(B)]

        stride = torch.tensor([stride_w, stride_h] * 2, device=device)
        priors, maps, masks = [], [], []
        for i, meta in enumerate(batch_img_metas):
            img_h, img_w = _shape(meta, 'img_shape')
            boxes = cell_boxes[i] * stride
            boxes = boxes.minimum(boxes.new_tensor([img_w, img_h] * 2))
            boxes = input_to_original(boxes, meta)
            boxes = boxes[(boxes[:, 2] > boxes[:, 0])
                          & (boxes[:, 3] > boxes[:, 1])]
            priors.append(self.sort_and_cap(boxes, boxes.new_ones(len(boxes))))
            vh, vw = valid_hw[i]
            maps.append(eigen_maps[i, :vh, :vw])
            masks.append(fg_masks[i, :vh, :vw])
        return EigenRegionPriors(priors, maps, masks, (stride_w, stride_h))

    def _select_level(self, feats: Union[Tensor, Sequence[Tensor]],
                      pad_hw: Tuple[int, int]) -> Tensor:
        """The ``[B, C, h, w]`` feature map of the configured level."""
        levels = [feats] if isinstance(feats, Tensor) else list(feats)
        if not levels or not all(
                isinstance(f, Tensor) and f.dim() == 4 for f in levels):
            raise ValueError('feats must be a [B, C, h, w] tensor or a '
                             'non-empty list of them')
        if self.stride is None:
            if not -len(levels) <= self.level < len(levels):
                raise IndexError(f'level {self.level} out of range for '
                                 f'{len(levels)} feature level(s)')
            return levels[self.level]
        pad_h, pad_w = pad_hw
        best, best_err = None, None
        for i, f in enumerate(levels):
            err_h = abs(pad_h / self.stride - f.shape[2])
            err_w = abs(pad_w / self.stride - f.shape[3])
            if err_h < 1 and err_w < 1 and (best is None
                                            or err_h + err_w < best_err):
                best, best_err = i, err_h + err_w
        if best is None:
            available = ', '.join(
                f'level {i}: ({pad_w / f.shape[3]:g}, {pad_h / f.shape[2]:g})'
                for i, f in enumerate(levels))
            raise ValueError(
                f'no feature level has stride {self.stride} for '
                f'batch_input_shape {(pad_h, pad_w)}; available strides '
                f'(w, h): {available}')
        return levels[best]

    def _drop_small(self, fg_masks: Tensor,
                    cell_boxes: List[Tensor]) -> List[Tensor]:
        """Drop the boxes of components with fewer than ``min_cells``."""
        labels, num = ndimage.label(
            fg_masks.cpu().numpy(), structure=_CROSS_3D)
        cells = np.bincount(labels.ravel(), minlength=num + 1)[1:]
        keep = torch.from_numpy(cells >= self.min_cells)
        keep = keep.to(fg_masks.device).split([len(b) for b in cell_boxes])
        return [b[k] for b, k in zip(cell_boxes, keep)]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_priors={self.max_priors}, '
                f'level={self.level}, stride={self.stride}, tau={self.tau}, '
                f'eps={self.eps}, centre={self.centre}, '
                f'min_cells={self.min_cells}, num_cuts={self.num_cuts})')


def input_to_original(bboxes: Tensor, img_meta: dict) -> Tensor:
    """Boxes in input-image pixels (after the pipeline's resize) ->
    original-image pixels, clipped to ``ori_shape``: the one rescale of
    the region priors and of the detector's own predictions.

    Args:
        bboxes (Tensor): Float ``[K, 4]`` ``(x1, y1, x2, y2)``.
        img_meta (dict): mmdet metainfo with ``scale_factor`` ``(w_scale,
            h_scale)`` (resized / original) and ``ori_shape`` ``(h, w)``.

    Returns:
        Tensor: ``[K, 4]`` in original-image pixels.
    """
    scale_w, scale_h = _scale_factor(img_meta)
    ori_h, ori_w = _shape(img_meta, 'ori_shape')
    bboxes = scale_boxes(bboxes, (1 / scale_w, 1 / scale_h))
    return bboxes.clamp(min=0).minimum(bboxes.new_tensor([ori_w, ori_h] * 2))


def _shape(meta: dict, key: str) -> Tuple[int, int]:
    if key not in meta:
        raise KeyError(f'batch_img_metas lack {key!r}')
    return int(meta[key][0]), int(meta[key][1])


def _batch_input_shape(batch_img_metas: List[dict]) -> Tuple[int, int]:
    shapes = {_shape(m, 'batch_input_shape') for m in batch_img_metas}
    if len(shapes) != 1:
        raise ValueError('every image of a batch must share one '
                         f'batch_input_shape, got {sorted(shapes)}')
    return shapes.pop()


def _scale_factor(meta: dict) -> Tuple[float, float]:
    """``(w_scale, h_scale)`` of mmdet's metainfo (resized / original)."""
    if 'scale_factor' not in meta:
        raise KeyError("batch_img_metas lack 'scale_factor'")
    scale = np.asarray(meta['scale_factor'], dtype=np.float64).ravel()
    if scale.size not in (2, 4) or not (scale > 0).all():
        raise ValueError('scale_factor must be (w_scale, h_scale) > 0, got '
                         f'{meta["scale_factor"]}')
    return float(scale[0]), float(scale[1])
