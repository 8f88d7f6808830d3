# Copyright (c) mmdet_joindet contributors. All rights reserved.
from typing import Dict, Optional, Sequence, Tuple, Union

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from mmengine.model import BaseModel
from torch import Tensor

# ImageNet mean/std, BGR (OpenCV) to RGB: what mmdet's ResNets expect.
DEFAULT_PREPROCESSOR = dict(
    type='MultiViewDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)


class BaseTwoViewModel(BaseModel):
    """What the self-supervised pretraining models share: two augmented
    views per image in (:class:`TwoViews`), ``self.backbone``'s feature
    maps out.

    Subclasses build ``self.backbone`` and implement :meth:`loss`.

    Args:
        data_preprocessor (dict, optional): Built from mmdet's registry in
            any default scope (mmengine's ``BaseModel`` would use its own).
            None means :class:`MultiViewDataPreprocessor` with ImageNet
            mean/std, BGR to RGB.
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = DEFAULT_PREPROCESSOR
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    def loss(self,
             inputs: Tensor,
             data_samples: Optional[Sequence] = None) -> Dict[str, Tensor]:
        """The training loss of ``[B, 2, 3, H, W]`` normalised views."""
        raise NotImplementedError

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], Tuple]:
        """``'loss'``: :meth:`loss`; ``'tensor'``: backbone features.

        Args:
            inputs (Tensor): ``[B, 2, 3, H, W]`` views for ``'loss'``;
                ``[B, 3, H, W]`` or ``[B, V, 3, H, W]`` (flattened to
                ``B * V`` images, sample-major) for ``'tensor'``.
            data_samples (list, optional): Per image, what the pipeline
                packed beside the views (:class:`TwoViews`: their
                geometry); passed to :meth:`loss`.
            mode (str): ``'loss'`` or ``'tensor'``.

        Returns:
            dict | tuple[Tensor]: The loss dict, or the (online) backbone's
            outputs (``[N, C_i, H_i, W_i]`` per ``out_indices``).
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            if inputs.dim() == 5:
                inputs = inputs.flatten(0, 1)
            return tuple(self.backbone(inputs))
        raise RuntimeError(f"{type(self).__name__} supports modes 'loss' "
                           f"and 'tensor', not {mode!r}")
