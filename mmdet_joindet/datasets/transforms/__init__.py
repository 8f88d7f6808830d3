# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Transforms of JoinDet's pretraining pipeline, in mmdet's ``TRANSFORMS``.

A pretraining pipeline reads: :class:`LoadImageSafely` (skip broken
files), :class:`LoadPriors` (the image's object priors as ``gt_*``, in
original-image pixels), mmdet's geometric transforms (large-scale
jittering, flip), :class:`CopyPasteSmallPriors`, ``PackDetInputs``.
DETReg's and UP-DETR's baselines replace :class:`LoadPriors` with
:class:`GenerateImagePriors` (priors computed online for every sample).
The backbone's own self-supervised pretraining (:class:`DenseSwAV`) reads
:class:`LoadImageSafely`, :class:`TwoViews`.
"""
from .copy_paste_small_priors import CopyPasteSmallPriors
from .generate_image_priors import GenerateImagePriors
from .load_image_safely import (ImageSkippedWarning, LoadImageSafely,
                                incomplete_image_reason)
from .load_priors import LoadPriors
from .two_views import TwoViews

__all__ = [
    'CopyPasteSmallPriors', 'GenerateImagePriors', 'ImageSkippedWarning',
    'LoadImageSafely', 'LoadPriors', 'TwoViews', 'incomplete_image_reason'
]
