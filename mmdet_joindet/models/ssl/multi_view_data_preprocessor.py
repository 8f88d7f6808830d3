# Copyright (c) mmdet_joindet contributors. All rights reserved.
from typing import Optional

import torch
from mmdet.registry import MODELS
from mmengine.model import ImgDataPreprocessor


@MODELS.register_module()
class MultiViewDataPreprocessor(ImgDataPreprocessor):
    """Normalise stacks of augmented views, as :class:`TwoViews` packs them.

    Each sample's ``inputs`` is a ``[V, 3, H, W]`` uint8 tensor (``V``
    views of one image, all the same size, BGR when loaded by OpenCV); the
    batch's list of them is stacked, moved to the model's device, converted
    to float32, optionally flipped to RGB and normalised with ``mean`` and
    ``std`` (the arguments of mmengine's :class:`ImgDataPreprocessor`,
    which this overrides only in :meth:`forward`: no padding is needed,
    the views have one size). A ``[B, 3, H, W]`` tensor or a list of
    ``[3, H, W]`` tensors (single views, e.g. for ``mode='tensor'``) is
    accepted too.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        """Stack, cast and normalise ``data['inputs']``.

        Args:
            data (dict): ``inputs``: a list of ``B`` ``[V, 3, H, W]`` (or
                ``[3, H, W]``) tensors, or one stacked tensor;
                ``data_samples`` (optional) is passed through.
            training (bool): Unused (same processing in every mode).

        Returns:
            dict: ``inputs``: float32 ``[B, V, 3, H, W]`` (or
            ``[B, 3, H, W]``), normalised; ``data_samples``: as given, or
            None.
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        if not isinstance(inputs, torch.Tensor):
            inputs = torch.stack(list(inputs))
        if inputs.dim() not in (4, 5) or inputs.shape[-3] != 3:
            raise ValueError('inputs must be [B, V, 3, H, W] or '
                             f'[B, 3, H, W], got {tuple(inputs.shape)}')
        inputs = inputs.float()
        if self._channel_conversion:
            inputs = inputs.flip(-3)
        if self._enable_normalize:
            inputs = (inputs - self.mean) / self.std  # mean: [3, 1, 1]
        samples: Optional[list] = data.get('data_samples')
        return dict(inputs=inputs, data_samples=samples)
