# Copyright (c) mmdet_joindet contributors. All rights reserved.
from abc import ABCMeta, abstractmethod
from typing import Any, List, Optional

import numpy as np
import torch
from mmdet.utils import InstanceList
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet_joindet.priors import cap_priors


class BaseObjectPriorGenerator(metaclass=ABCMeta):
    """Interface of the object-prior generators of self-supervised pretraining.

    An object prior is a class-agnostic pseudo box that pretraining uses as a
    target: JoinDet's region priors (paper Sec. 2.1), DETReg's selective
    search boxes, UP-DETR's random crops. Every generator turns a batch of
    inputs into one :obj:`InstanceData` per image with

    - ``bboxes`` (Tensor): float32 ``[K, 4]`` boxes ``(x1, y1, x2, y2)`` in
      **original-image pixels**;
    - ``scores`` (Tensor): float32 ``[K]``, descending;

    with ``K <= max_priors``, on the inputs' device (the CPU for images).

    ``input_type`` says what :meth:`generate` takes: ``'image'`` (a list of
    numpy uint8 images, ``[H, W, 3]`` BGR or ``[H, W]`` grayscale, boxes in
    their pixels) or ``'features'`` (feature maps of the model plus mmdet's
    ``batch_img_metas``).

    Args:
        max_priors (int, optional): Most priors kept per image, highest
            score first (see :meth:`sort_and_cap`). None keeps them all.
            Defaults to 30 (DETReg's top 30).
    """

    input_type: str = 'image'

    def __init__(self, max_priors: Optional[int] = 30) -> None:
        if max_priors is not None and (isinstance(max_priors, bool)
                                       or not isinstance(max_priors, int)
                                       or max_priors < 1):
            raise ValueError('max_priors must be a positive int or None, got '
                             f'{max_priors!r}')
        self.max_priors = max_priors

    @abstractmethod
    def generate(self,
                 inputs: Any,
                 batch_img_metas: Optional[List[dict]] = None) -> InstanceList:
        """Object priors of a batch, one :obj:`InstanceData` per image.

        Args:
            inputs: What ``input_type`` names.
            batch_img_metas (list[dict], optional): mmdet's metainfo of each
                image.

        Returns:
            list[:obj:`InstanceData`]: ``bboxes`` float32 ``[K, 4]`` xyxy in
            original-image pixels and ``scores`` float32 ``[K]``, sorted as
            :meth:`sort_and_cap` does, ``K <= max_priors``.
        """

    def __call__(self,
                 inputs: Any,
                 batch_img_metas: Optional[List[dict]] = None) -> InstanceList:
        return self.generate(inputs, batch_img_metas)

    def sort_and_cap(self, bboxes: Tensor, scores: Tensor) -> InstanceData:
        """Sort one image's priors and keep the first ``max_priors``.

        The order is by score, descending; ties go to the larger box area
        first; boxes equal in both keep their input order (a stable sort).
        Area ties matter: region priors and baseline priors all score 1.0,
        so the cap keeps the largest boxes.

        Args:
            bboxes (Tensor): Float ``[N, 4]`` boxes ``(x1, y1, x2, y2)``.
            scores (Tensor): Float ``[N]`` scores, on ``bboxes``' device.

        Returns:
            :obj:`InstanceData`: ``bboxes`` float32 ``[K, 4]`` and
            ``scores`` float32 ``[K]``, ``K = min(N, max_priors)``, on
            ``bboxes``' device.
        """
        if bboxes.dim() != 2 or bboxes.shape[1] != 4:
            raise ValueError('bboxes must be [N, 4], got '
                             f'{tuple(bboxes.shape)}')
        if scores.shape != bboxes.shape[:1]:
            raise ValueError(f'scores must be [{bboxes.shape[0]}], got '
                             f'{tuple(scores.shape)}')
        bboxes = bboxes.float()
        scores = scores.to(bboxes.device, torch.float32)
        if not (torch.isfinite(bboxes).all() and torch.isfinite(scores).all()):
            raise ValueError('bboxes and scores must be finite')
        bboxes, scores = cap_priors(bboxes, scores, self.max_priors)
        return InstanceData(bboxes=bboxes, scores=scores)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(max_priors={self.max_priors})'


def check_images(
        images: Any,
        batch_img_metas: Optional[List[dict]] = None) -> List[np.ndarray]:
    """Validate the input of an ``input_type = 'image'`` generator.

    Args:
        images (list[np.ndarray]): uint8 images, ``[H, W, 3]`` (BGR),
            ``[H, W, 1]`` or ``[H, W]`` (grayscale), ``H, W >= 1``.
        batch_img_metas (list[dict], optional): Not used by image generators
            (boxes are in the given images' pixels); its length is checked.

    Returns:
        list[np.ndarray]: The images, each ``[H, W, 3]`` or ``[H, W]``.
    """
    if isinstance(images, np.ndarray) or not isinstance(images, (list, tuple)):
        raise TypeError('images must be a list of numpy arrays, got '
                        f'{type(images).__name__}')
    if batch_img_metas is not None and len(batch_img_metas) != len(images):
        raise ValueError(f'got {len(images)} images but '
                         f'{len(batch_img_metas)} batch_img_metas')
    out = []
    for i, img in enumerate(images):
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            raise TypeError(f'image {i} must be a numpy uint8 array, got '
                            f'{type(img).__name__} '
                            f'{getattr(img, "dtype", "")}')
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
            raise ValueError(f'image {i} must be [H, W, 3] or [H, W], got '
                             f'{img.shape}')
        if img.shape[0] < 1 or img.shape[1] < 1:
            raise ValueError(f'image {i} is empty: {img.shape}')
        out.append(img)
    return out
