# Copyright (c) mmdet_joindet contributors. All rights reserved.
import math
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType
from mmengine.dist import all_reduce, get_world_size
from torch import Tensor

from .base import BaseTwoViewModel


def _logsumexp_over_samples(log_q: Tensor) -> Tensor:
    """``logsumexp`` of ``[K, N]`` over the samples of every process.

    Each process holds its own ``N`` samples; the maximum and the sum of
    exponentials are all-reduced, so every process gets the same ``[K, 1]``.
    Outside distributed training it is ``log_q.logsumexp(1)``.
    """
    if get_world_size() == 1:
        return log_q.logsumexp(dim=1, keepdim=True)
    peak = log_q.amax(dim=1, keepdim=True)
    all_reduce(peak, op='max')
    total = (log_q - peak).exp().sum(dim=1, keepdim=True)
    all_reduce(total, op='sum')
    return peak + total.log()


@torch.no_grad()
def sinkhorn(scores: Tensor, eps: float = 0.05, iters: int = 3) -> Tensor:
    """SwAV's equipartitioned soft assignment of samples to prototypes.

    Caron et al. 2020, Sec. 3.1 and Alg. 1: ``Q = exp(scores / eps)``
    scaled alternately so that every prototype receives ``1 / K`` of the
    mass and every sample ``1 / N``; returned per sample (rows sum to 1).
    Computed in the log domain (the same iterates, no overflow).

    In distributed training the equipartition spans the samples of all
    processes, as SwAV's all-reduced sums do: each process passes its own
    samples and gets their rows of the codes of the whole global batch.

    Args:
        scores (Tensor): ``[N, K]`` cosine scores of ``N`` samples against
            ``K`` prototypes (this process's samples).
        eps (float): Entropy regularisation. Defaults to 0.05 (SwAV).
        iters (int): Scaling rounds. Defaults to 3 (SwAV).

    Returns:
        Tensor: Float32 ``[N, K]`` codes, each row a distribution.
    """
    log_q = scores.float().t() / eps  # [K, N]
    num_protos = log_q.shape[0]
    num_samples = torch.tensor(float(log_q.shape[1]), device=log_q.device)
    all_reduce(num_samples, op='sum')  # every process's samples
    log_n = float(num_samples.log())
    for _ in range(iters):
        log_q = log_q - _logsumexp_over_samples(log_q) - math.log(num_protos)
        log_q = log_q - log_q.logsumexp(dim=0, keepdim=True) - log_n
    return (log_q + log_n).exp().t()


def matching_grid(geom_a: Tensor, geom_b: Tensor, size: int,
                  shape: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """Where each cell of view ``a`` lies in view ``b`` of the same image.

    Both views are crops of one image, resized to ``size x size`` and maybe
    flipped (:class:`TwoViews` geometry). The centre of cell ``(i, j)`` of
    an ``h x w`` map over view ``a`` is view pixel
    ``((j + 0.5) size / w, (i + 0.5) size / h)``; it is unflipped, mapped to
    image pixels through ``a``'s crop box, then into ``b``'s crop and
    flipped as ``b`` was.

    Args:
        geom_a (Tensor): ``[B, 5]`` ``(x1, y1, x2, y2, flipped)`` per image.
        geom_b (Tensor): ``[B, 5]``, the other view.
        size (int): Side of the views in pixels.
        shape (tuple[int, int]): ``(h, w)`` of the feature map over view a.

    Returns:
        tuple[Tensor, Tensor]: The ``[B, h, w, 2]`` ``(x, y)`` positions in
        view ``b`` as ``grid_sample`` coordinates (``align_corners=False``:
        -1 and 1 are the outer pixel edges), and the bool ``[B, h, w]``
        mask of cells that view ``b`` sees.
    """
    h, w = shape
    dev = geom_a.device
    u = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) * size / w
    v = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) * size / h

    def axis(pos, g_a, g_b, flip_a, flip_b):
        # pos: [L] view-a pixels along one axis; g_*: [B, 2] crop start/end
        pos = pos[None].expand(g_a.shape[0], -1)
        if flip_a is not None:
            pos = torch.where(flip_a[:, None] > 0, size - pos, pos)
        img = g_a[:, :1] + pos * (g_a[:, 1:] - g_a[:, :1]) / size
        pos_b = (img - g_b[:, :1]) * size / (g_b[:, 1:] - g_b[:, :1])
        if flip_b is not None:
            pos_b = torch.where(flip_b[:, None] > 0, size - pos_b, pos_b)
        return pos_b  # [B, L]

    xb = axis(u, geom_a[:, [0, 2]], geom_b[:, [0, 2]], geom_a[:, 4], geom_b[:,
                                                                            4])
    yb = axis(v, geom_a[:, [1, 3]], geom_b[:, [1, 3]], None, None)
    x = xb[:, None, :].expand(-1, h, -1)
    y = yb[:, :, None].expand(-1, -1, w)
    inside = (x >= 0) & (x < size) & (y >= 0) & (y < size)
    grid = torch.stack([2 * x / size - 1, 2 * y / size - 1], dim=-1)
    return grid, inside


@MODELS.register_module()
class DenseSwAV(BaseTwoViewModel):
    """Dense SwAV: pixel-level swapped prediction of cluster assignments.

    The backbone under JoinDet's eigen attention map needs feature maps in
    which the cells of an object resemble each other and differ from the
    background's (a normalized cut then isolates them). Image-level
    objectives (BYOL) only shape the pooled feature; on the proxy scenes
    (small digits blended into crops of a dozen photographs) BYOL's maps
    gave no better cut than random weights (``docs/benchmarks.md``; the
    BYOL model was removed afterwards, see ``research/README.md``).
    This applies SwAV's objective (Caron et al. 2020) to every cell: each
    level's cells are projected (1x1 convs) onto ``K`` prototypes; the
    Sinkhorn-equipartitioned assignment (:func:`sinkhorn`) of the cells of
    one view, over the whole batch, is the target that the *same image
    location* in the other view predicts (soft-max of its scores at
    temperature ``temperature``). Locations are matched through the crop
    geometry that :class:`TwoViews` records (:func:`matching_grid`);
    targets are bilinearly sampled there, and cells outside the other
    view are left out. Equipartition over all cells of a batch clusters
    *local appearance across images*; the intent is that cells of the
    objects, recurring in every image, share prototypes and part from the
    backgrounds' textures (how far that goes is measured in
    ``docs/benchmarks.md``). This is the dense counterpart of SwAV's image
    clusters; DenseCL (Wang et al. 2021) and PixPro (Xie et al. 2021)
    match locations the same way, but contrast or propagate instead of
    clustering. Like SwAV it needs no
    momentum network and no negatives, so small CPU batches work; unlike
    SwAV's queue-free small-batch regime, a batch here holds thousands of
    cells, enough for equipartition.

    Distributed training: the cells of all processes' batches are
    equipartitioned together (:func:`sinkhorn` all-reduces its sums, as
    SwAV does), so the codes depend on the global batch, not on how it is
    split across processes.

    Every level of the backbone's ``out_indices`` gets its own head and
    prototypes and its loss is averaged with the others', so every stage
    that feeds one of them is trained (use all stages so that an exported
    backbone has no untrained layer).

    Args:
        backbone (dict): The backbone config (mmdet ``ResNet``); its
            ``out_indices`` give the levels (all of them are used).
        view_size (int): Side of the views (:class:`TwoViews` ``size``).
        num_prototypes (int): ``K`` per level. Defaults to 64.
        hidden_channels (int): Head width. Defaults to 256.
        out_channels (int): Projection size. Defaults to 64.
        temperature (float): Of the predicting soft-max. Defaults to 0.1
            (SwAV).
        sinkhorn_eps (float): Defaults to 0.05 (SwAV).
        sinkhorn_iters (int): Defaults to 3 (SwAV).
        data_preprocessor (dict, optional): Defaults to None
            (:class:`BaseTwoViewModel`'s default).
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 view_size: int,
                 num_prototypes: int = 64,
                 hidden_channels: int = 256,
                 out_channels: int = 64,
                 temperature: float = 0.1,
                 sinkhorn_eps: float = 0.05,
                 sinkhorn_iters: int = 3,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not temperature > 0 or not sinkhorn_eps > 0:
            raise ValueError('temperature and sinkhorn_eps must be > 0, got '
                             f'{temperature}, {sinkhorn_eps}')
        self.backbone = MODELS.build(backbone)
        channels = self._level_channels(self.backbone)
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, hidden_channels, 1),
                nn.BatchNorm2d(hidden_channels), nn.ReLU(
                    inplace=True), nn.Conv2d(hidden_channels, out_channels, 1))
            for c in channels)
        self.prototypes = nn.ParameterList(
            nn.Parameter(torch.randn(num_prototypes, out_channels))
            for _ in channels)
        self.view_size = view_size
        self.temperature = temperature
        self.sinkhorn_eps = sinkhorn_eps
        self.sinkhorn_iters = sinkhorn_iters

    @staticmethod
    def _level_channels(backbone: nn.Module) -> List[int]:
        """Output channels of each of an mmdet ResNet's ``out_indices``:
        ``base_channels * 2**i * block.expansion`` for stage ``i``."""
        try:
            width = backbone.base_channels * backbone.block.expansion
            return [width * 2**i for i in backbone.out_indices]
        except AttributeError as e:
            raise ValueError('DenseSwAV needs an mmdet ResNet backbone '
                             '(base_channels, block, out_indices)') from e

    def level_scores(self, views: Tensor) -> List[Tensor]:
        """Cosine scores of every cell against each level's prototypes.

        Args:
            views (Tensor): ``[N, 3, S, S]`` normalised views.

        Returns:
            list[Tensor]: Per level, ``[N, K, h, w]``.
        """
        out = []
        for feat, head, protos in zip(
                self.backbone(views), self.heads, self.prototypes):
            z = F.normalize(head(feat), dim=1)
            c = F.normalize(protos, dim=1)
            out.append(torch.einsum('nchw,kc->nkhw', z, c))
        return out

    def loss(
            self, inputs: Tensor,
            data_samples: Union[Sequence[Tensor],
                                Tensor]) -> Dict[str, Tensor]:
        """Swapped prediction of matched cells, both ways, every level.

        Args:
            inputs (Tensor): ``[B, 2, 3, S, S]`` normalised views.
            data_samples (list[Tensor] | Tensor): ``B`` ``[2, 5]`` view
                geometries (:class:`TwoViews`), or one ``[B, 2, 5]`` tensor
                as mmengine's ``default_collate`` stacks them.

        Returns:
            dict: ``loss`` (mean over levels and both directions) and
            ``matched`` (fraction of cells seen by the other view, not
            differentiated, for the log).
        """
        if inputs.dim() != 5 or inputs.shape[1] != 2:
            raise ValueError('DenseSwAV needs two views per image, [B, 2, '
                             f'3, H, W]; got {tuple(inputs.shape)}')
        if inputs.shape[-1] != self.view_size or \
                inputs.shape[-2] != self.view_size:
            raise ValueError(f'views must be {self.view_size} px square '
                             f'(view_size), got {tuple(inputs.shape[-2:])}')
        if data_samples is None or len(data_samples) != inputs.shape[0]:
            raise ValueError('DenseSwAV needs the [2, 5] view geometry of '
                             'every image as data_samples (TwoViews '
                             'writes it)')
        if isinstance(data_samples, Tensor):  # stacked by default_collate
            geom = data_samples.to(inputs.device).float()
        else:
            geom = torch.stack([
                g.to(inputs.device).float() for g in data_samples
            ])  # [B, 2, 5]
        num = inputs.shape[0]
        views = inputs.transpose(0, 1).flatten(0, 1)  # [2B, 3, S, S]
        losses, matched = [], []
        for scores in self.level_scores(views):
            k, h, w = scores.shape[1:]
            flat = scores.permute(0, 2, 3, 1).reshape(-1, k)
            codes = sinkhorn(flat.detach(),
                             self.sinkhorn_eps, self.sinkhorn_iters).reshape(
                                 2 * num, h, w, k).permute(0, 3, 1,
                                                           2)  # [2B, K, h, w]
            log_p = F.log_softmax(scores / self.temperature, dim=1)
            for a, b in ((0, 1), (1, 0)):
                grid, inside = matching_grid(geom[:, a], geom[:, b],
                                             self.view_size, (h, w))
                target = F.grid_sample(
                    codes[b * num:(b + 1) * num],
                    grid,
                    mode='bilinear',
                    padding_mode='border',
                    align_corners=False)  # [B, K, h, w]
                ce = -(target * log_p[a * num:(a + 1) * num]).sum(1)
                weight = inside.float()
                losses.append((ce * weight).sum() / weight.sum().clamp(min=1))
                matched.append(weight.mean())
        return dict(
            loss=torch.stack(losses).mean(),
            matched=torch.stack(matched).mean().detach())
