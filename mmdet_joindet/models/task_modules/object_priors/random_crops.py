# Copyright (c) mmdet_joindet contributors. All rights reserved.
import os
from typing import List, Optional

import numpy as np
import torch
from mmdet.registry import TASK_UTILS
from mmdet.utils import InstanceList
from mmengine.dist import get_rank

from .base import BaseObjectPriorGenerator, check_images


@TASK_UTILS.register_module()
class RandomCropPriorGenerator(BaseObjectPriorGenerator):
    """UP-DETR's random query patches as object priors.

    UP-DETR (Dai et al., CVPR 2021) pretrains DETR to localise random
    patches of the image (10 per image, side >= 8 pixels). Per image of
    size ``H x W`` this draws ``num_crops`` boxes: width an integer uniform
    in ``[min(min_size, W), W]``, height likewise in ``[min(min_size, H),
    H]`` (an image smaller than ``min_size`` gives its full side), top-left
    corner an integer uniform over the positions that keep the box inside
    the image. Every box scores 1.0, so they come sorted by area, largest
    first (:meth:`sort_and_cap`).

    Randomness comes from the generator's own ``np.random.Generator``:
    seeded with ``seed`` when given (reproducible runs), from fresh OS
    entropy otherwise; successive calls draw different boxes. A process
    forked after construction (a dataloader worker holds a copy of the
    generator) re-derives its stream on first use, so workers do not repeat
    each other: from ``(seed, rank, worker id)`` when seeded, from fresh
    entropy otherwise.

    Args:
        num_crops (int): Boxes per image, also ``max_priors``. Defaults to
            10 (UP-DETR).
        min_size (int): Smallest side in pixels. Defaults to 8 (UP-DETR).
        seed (int, optional): Seed of the random stream. Defaults to None.

    ``generate(images)`` takes a list of numpy uint8 images ``[H, W, 3]``
    (BGR) or ``[H, W]`` and returns per image ``bboxes`` float32
    ``[num_crops, 4]`` ``(x1, y1, x2, y2)`` in that image's pixels, with
    ``0 <= x1 < x2 <= W`` and ``0 <= y1 < y2 <= H``, and ``scores`` float32
    ``[num_crops]`` (all 1.0), on the CPU.
    """

    input_type = 'image'

    def __init__(self,
                 num_crops: int = 10,
                 min_size: int = 8,
                 seed: Optional[int] = None) -> None:
        for name, value in (('num_crops', num_crops), ('min_size', min_size)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(f'{name} must be an int >= 1, got {value!r}')
        super().__init__(max_priors=num_crops)
        self.num_crops = num_crops
        self.min_size = min_size
        self.seed = seed
        self._pid = os.getpid()
        self._rng = np.random.default_rng(seed)

    def _generator(self) -> np.random.Generator:
        """This process's random stream (re-derived after a fork)."""
        pid = os.getpid()
        if pid != self._pid:
            self._pid = pid
            if self.seed is None:
                self._rng = np.random.default_rng()
            else:
                info = torch.utils.data.get_worker_info()
                worker = info.id if info is not None else pid
                self._rng = np.random.default_rng(
                    np.random.SeedSequence(
                        self.seed, spawn_key=(get_rank(), worker)))
        return self._rng

    def generate(self,
                 images: List[np.ndarray],
                 batch_img_metas: Optional[List[dict]] = None) -> InstanceList:
        """Random boxes for each image; see the class docstring.

        Args:
            images (list[np.ndarray]): uint8 ``[H, W, 3]`` (BGR) or
                ``[H, W]`` images.
            batch_img_metas (list[dict], optional): Not used.

        Returns:
            list[:obj:`InstanceData`]: ``bboxes`` float32 ``[num_crops, 4]``
            and ``scores`` float32 ``[num_crops]`` per image.
        """
        rng = self._generator()
        results = []
        for img in check_images(images, batch_img_metas):
            sizes = np.array(img.shape[1::-1])  # (W, H)
            low = np.minimum(self.min_size, sizes)
            wh = rng.integers(
                low, sizes, endpoint=True, size=(self.num_crops, 2))
            xy = rng.integers(0, sizes - wh, endpoint=True)
            boxes = torch.from_numpy(np.concatenate([xy, xy + wh], 1))
            results.append(
                self.sort_and_cap(boxes, boxes.new_ones(self.num_crops)))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_crops={self.num_crops}, '
                f'min_size={self.min_size}, seed={self.seed})')
