# Copyright (c) mmdet_joindet contributors. All rights reserved.
import copy
import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType
from torch import Tensor

from .base import BaseTwoViewModel


def mlp(in_channels: int, hidden_channels: int,
        out_channels: int) -> nn.Sequential:
    """BYOL's projector/predictor: Linear-BN-ReLU-Linear (Sec. 3.3)."""
    return nn.Sequential(
        nn.Linear(in_channels, hidden_channels),
        nn.BatchNorm1d(hidden_channels), nn.ReLU(inplace=True),
        nn.Linear(hidden_channels, out_channels))


def byol_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``2 - 2 cos(pred, target)``, averaged over the batch (eq. 2).

    Args:
        pred (Tensor): The online prediction, ``[N, C]``.
        target (Tensor): The target projection, ``[N, C]`` (no gradient
            flows into it).

    Returns:
        Tensor: A scalar in ``[0, 4]``.
    """
    cos = (F.normalize(pred, dim=1) * F.normalize(target.detach(), dim=1))
    return (2 - 2 * cos.sum(dim=1)).mean()


@MODELS.register_module()
class BYOL(BaseTwoViewModel):
    """BYOL: self-supervised pretraining of the backbone whose feature maps
    JoinDet's eigen attention map reads (its region priors).

    Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020. The paper's
    region priors come from a self-supervised backbone (SwAV); SwAV's
    weights cannot be downloaded here and a randomly initialised backbone
    gives eigen maps that recall almost nothing, so this trains one on
    the unlabeled images themselves. BYOL suits a 2-core CPU: it uses no
    negatives, so small batches work (SimCLR/MoCo need large batches or a
    queue), it needs no prototype or queue bookkeeping (SwAV, MoCo), and
    with BatchNorm in both MLPs it trains stably from scratch.

    The online network is ``backbone`` -> global average pool ->
    ``projector`` -> ``predictor``; the target network is an exponential
    moving average (EMA) of ``backbone`` + ``projector``, without gradient
    (``target_backbone``, ``target_projector``), updated at the start of
    each training forward (:meth:`loss`) with the online weights that the
    previous optimizer step left:
    ``xi <- tau * xi + (1 - tau) * theta`` (Sec. 3.1). ``tau`` rises from
    ``momentum`` to 1 along a cosine over ``total_updates`` steps when that
    is given (Sec. 3.2), else stays ``momentum``. Only parameters are
    averaged; the target's BatchNorm buffers follow its own (training
    mode) forward passes. The loss is the symmetric normalised-L2 loss
    ``L(q(v1), z'(v2)) + L(q(v2), z'(v1))`` with ``L = 2 - 2 cos``
    (eq. 2). Both views go through each network as one batch of ``2B``.

    Distributed training: the update runs inside the forward pass, which
    ``MMDistributedDataParallel`` calls like the single-process
    ``train_step`` does, so the target moves under either (mmpretrain's
    BYOL updates its target the same way). Every process applies the same
    update to the same synchronised online weights, so the targets stay
    identical without communication.

    Args:
        backbone (dict): The backbone config (mmdet ``ResNet``). Its last
            output is pooled; its channel count is the backbone's
            ``feat_dim`` (the last stage's), so ``out_indices`` must end
            with the last stage.
        hidden_channels (int): Hidden width of the projector and the
            predictor. Defaults to 1024 (the paper: 4096).
        out_channels (int): Projection size. Defaults to 128 (the paper:
            256).
        momentum (float): Base EMA momentum ``tau``. Defaults to 0.99
            (the paper: 0.996, for far longer runs).
        total_updates (int, optional): Steps of the cosine increase of
            ``tau`` to 1 (the run's ``max_iters``). Defaults to None
            (constant ``tau``).
        data_preprocessor (dict, optional): Defaults to None
            (:class:`BaseTwoViewModel`'s default).
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType = dict(
                     type='ResNet', depth=18, out_indices=(3, ),
                     init_cfg=None),
                 hidden_channels: int = 1024,
                 out_channels: int = 128,
                 momentum: float = 0.99,
                 total_updates: Optional[int] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not 0 <= momentum <= 1:
            raise ValueError(f'momentum must be in [0, 1], got {momentum}')
        self.backbone = MODELS.build(backbone)
        out_indices = getattr(self.backbone, 'out_indices', None)
        num_stages = getattr(self.backbone, 'num_stages', None)
        if out_indices is not None and max(out_indices) != num_stages - 1:
            raise ValueError('BYOL pools the last ResNet stage: out_indices '
                             f'must include {num_stages - 1}, got '
                             f'{out_indices}')
        in_channels = self.backbone.feat_dim
        self.projector = mlp(in_channels, hidden_channels, out_channels)
        self.predictor = mlp(out_channels, hidden_channels, out_channels)
        self.target_backbone = copy.deepcopy(self.backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for param in self._target_params():
            param.requires_grad_(False)
        self.momentum = momentum
        self.total_updates = total_updates
        # steps taken; in the checkpoint, so a resumed run keeps its tau
        self.register_buffer('num_updates', torch.zeros((), dtype=torch.long))

    def init_weights(self) -> None:
        """Initialise the online network; the target starts as its copy."""
        super().init_weights()
        with torch.no_grad():
            for t, o in zip(self._target_params(), self._online_params()):
                t.copy_(o)

    def _online_params(self):
        yield from self.backbone.parameters()
        yield from self.projector.parameters()

    def _target_params(self):
        yield from self.target_backbone.parameters()
        yield from self.target_projector.parameters()

    @property
    def tau(self) -> float:
        """The EMA momentum of the next update (cosine schedule, Sec 3.2)."""
        if not self.total_updates:
            return self.momentum
        k = min(int(self.num_updates), self.total_updates)
        return 1 - (1 - self.momentum) * (
            math.cos(math.pi * k / self.total_updates) + 1) / 2

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``target <- tau * target + (1 - tau) * online`` (parameters)."""
        tau = self.tau
        for t, o in zip(self._target_params(), self._online_params()):
            t.mul_(tau).add_(o.detach(), alpha=1 - tau)
        self.num_updates += 1

    def embed(self, views: Tensor, target: bool = False) -> Tensor:
        """Pooled projections of images.

        Args:
            views (Tensor): ``[N, 3, H, W]`` normalised images.
            target (bool): Use the target network (no gradient).

        Returns:
            Tensor: ``[N, out_channels]``.
        """
        if target:
            feats = self.target_backbone(views)[-1]  # [N, C, h, w]
            return self.target_projector(feats.mean(dim=(2, 3)))
        feats = self.backbone(views)[-1]
        return self.projector(feats.mean(dim=(2, 3)))

    def loss(self,
             inputs: Tensor,
             data_samples: Optional[Sequence] = None) -> Dict[str, Tensor]:
        """The symmetric BYOL loss of two views per image.

        Args:
            inputs (Tensor): ``[B, 2, 3, H, W]`` normalised views.
            data_samples (list, optional): Unused (the views' geometry).

        Returns:
            dict: ``loss``: a scalar tensor.
        """
        if inputs.dim() != 5 or inputs.shape[1] != 2:
            raise ValueError('BYOL needs two views per image, [B, 2, 3, H, '
                             f'W]; got {tuple(inputs.shape)}')
        if self.training:
            # the previous optimizer step's online weights into the target
            # (a no-op before the first step: init_weights made them equal)
            self.momentum_update()
        # view-major batch: [v1 of every image, then v2 of every image]
        views = inputs.transpose(0, 1).flatten(0, 1)  # [2B, 3, H, W]
        pred = self.predictor(self.embed(views))
        with torch.no_grad():
            proj = self.embed(views, target=True)
        # each view's prediction against the other view's target
        proj = proj.roll(inputs.shape[0], dims=0)
        # mean over 2B pairs; x2 = the paper's sum of the two losses
        return dict(loss=2 * byol_loss(pred, proj))
