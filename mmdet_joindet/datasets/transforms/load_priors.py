# Copyright (c) mmdet_joindet contributors. All rights reserved.
from typing import Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

from mmdet_joindet.priors import cap_priors


@TRANSFORMS.register_module()
class LoadPriors(BaseTransform):
    """Load the image's object priors as its ground truth boxes.

    JoinDet supervises pretraining with the current round of object priors
    ``R_n`` (paper Sec. 2.4): each prior is a foreground target of class
    "object" (label 0). The priors come from ``results['prior_reader']`` (a
    :class:`PriorReader`, set with ``results['prior_index']`` by
    :class:`SelfSupervisedDataset`), as boxes ``(x1, y1, x2, y2)`` in pixels
    of the original image; so this transform must come right after the
    image is loaded, before any resize, crop or flip (checked: the image
    must be at its original size and no geometric transform recorded), and
    the pipeline's geometric transforms then move the boxes with the image.

    Boxes are clipped to the image; those narrower or lower than
    ``min_size`` pixels after clipping (degenerate ones, NaNs) are dropped;
    with ``max_priors``, the highest-scoring ones are kept, highest first
    (otherwise the stored order is kept).

    Required keys: ``prior_reader`` (removed: it does not travel further
    down the pipeline), ``prior_index``, ``img_shape``, ``ori_shape``.
    Added keys:

    - ``gt_bboxes`` (:obj:`HorizontalBoxes`): float32 ``[k, 4]``
      ``(x1, y1, x2, y2)``, original-image pixels.
    - ``gt_bboxes_labels`` (np.ndarray): int64 ``[k]``, all 0.
    - ``gt_ignore_flags`` (np.ndarray): bool ``[k]``, all False.
    - ``prior_round`` (int): The round the priors came from (add it to
      ``PackDetInputs``' ``meta_keys`` to see it in the data samples).

    Args:
        max_priors (int, optional): Keep at most this many priors, highest
            score first. Defaults to None (all: the prior update already
            caps them).
        min_size (float): Smallest width and height in pixels. Defaults to
            1.0 (our default).
    """

    def __init__(self,
                 max_priors: Optional[int] = None,
                 min_size: float = 1.0) -> None:
        if max_priors is not None and (isinstance(max_priors, bool)
                                       or not isinstance(max_priors, int)
                                       or max_priors < 0):
            raise ValueError(
                f'max_priors must be None or an int >= 0, got {max_priors!r}')
        self.max_priors = max_priors
        self.min_size = float(min_size)

    def transform(self, results: dict) -> dict:
        """Add the priors of ``results['prior_index']`` as ``gt_*``.

        Args:
            results (dict): A loaded image's results.

        Returns:
            dict: ``results`` with the keys listed in the class docstring.
        """
        reader = results.pop('prior_reader', None)
        index = results.get('prior_index')
        if reader is None or index is None:
            raise KeyError("LoadPriors needs results['prior_reader'] and "
                           "results['prior_index']: use it in the pipeline of "
                           'SelfSupervisedDataset')
        check_untransformed(results, type(self).__name__)
        boxes, scores = reader.get(index)
        set_prior_targets(results, boxes, scores, self.min_size,
                          self.max_priors)
        results['prior_round'] = reader.round
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_priors={self.max_priors}, '
                f'min_size={self.min_size})')


def check_untransformed(results: dict, who: str) -> None:
    """Raise unless the image is still at its original size, untouched.

    Priors are stored in original-image pixels: a transform that adds them
    must come right after the image is loaded, so that the pipeline's
    geometric transforms move them with the image.
    """
    img_shape = tuple(results['img_shape'][:2])
    if 'homography_matrix' in results \
            or img_shape != tuple(results['ori_shape'][:2]):
        raise ValueError(
            f'{who} must come right after the image is loaded: the '
            'priors are in original-image pixels, but the image was '
            f'already transformed (img_shape {img_shape}, ori_shape '
            f"{tuple(results['ori_shape'][:2])})")


def set_prior_targets(results: dict, boxes, scores, min_size: float,
                      max_priors: Optional[int]) -> None:
    """Set one image's priors as its ``gt_*`` keys (label 0, "object").

    Boxes ``[k, 4]`` ``(x1, y1, x2, y2)`` in original-image pixels are
    clipped to ``img_shape``; those narrower or lower than ``min_size``
    are dropped; with ``max_priors`` the highest-scoring are kept.
    """
    boxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    height, width = results['img_shape'][:2]
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = (boxes[:, 2] - boxes[:, 0] >= min_size) & (
        boxes[:, 3] - boxes[:, 1] >= min_size)
    boxes, scores = boxes[keep], scores[keep]
    if max_priors is not None and len(boxes) > max_priors:
        boxes, _ = cap_priors(boxes, scores, max_priors)
    results['gt_bboxes'] = HorizontalBoxes(boxes, dtype=torch.float32)
    results['gt_bboxes_labels'] = np.zeros(len(boxes), dtype=np.int64)
    results['gt_ignore_flags'] = np.zeros(len(boxes), dtype=bool)
