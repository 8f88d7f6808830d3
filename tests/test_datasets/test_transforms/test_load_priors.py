# Copyright (c) mmdet_joindet contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

from mmdet_joindet.datasets import LoadPriors


class FakeReader:
    """``PriorReader``'s interface over a dict of per-image arrays."""

    def __init__(self, priors, round_idx=0):
        self.priors = priors
        self._round = round_idx
        self.round = None

    def get(self, i):
        self.round = self._round
        boxes, scores = self.priors[i]
        return (np.asarray(boxes, np.float32).reshape(-1, 4),
                np.asarray(scores, np.float32))


def results_for(reader, index=0, shape=(50, 80)):
    return dict(
        img=np.zeros(shape + (3, ), np.uint8),
        img_shape=shape,
        ori_shape=shape,
        prior_reader=reader,
        prior_index=index)


BOXES = [
    [10, 5, 30, 25],  # inside
    [-5, -5, 20, 10],  # clipped to (0, 0, 20, 10)
    [70, 40, 95, 60],  # clipped to (70, 40, 80, 50)
    [90, 10, 99, 20],  # outside: empty after clipping
    [5, 5, 5.5, 30],  # 0.5 px wide: degenerate
    [1, 2, 3, 4],
]
SCORES = [0.5, 0.9, 0.2, 1.0, 1.0, 0.7]


def test_priors_become_gt_instances():
    reader = FakeReader({3: (BOXES, SCORES)}, round_idx=4)
    out = LoadPriors()(results_for(reader, index=3))
    assert isinstance(out['gt_bboxes'], HorizontalBoxes)
    assert out['gt_bboxes'].tensor.dtype == torch.float32
    np.testing.assert_array_equal(
        out['gt_bboxes'].tensor.numpy(),
        [[10, 5, 30, 25], [0, 0, 20, 10], [70, 40, 80, 50], [1, 2, 3, 4]])
    assert out['gt_bboxes_labels'].dtype == np.int64
    assert (out['gt_bboxes_labels'] == 0).all()
    assert out['gt_ignore_flags'].dtype == bool
    assert out['gt_ignore_flags'].shape == (4, )
    assert not out['gt_ignore_flags'].any()
    assert out['prior_round'] == 4
    assert 'prior_reader' not in out  # does not travel down the pipeline


def test_max_priors_keeps_the_best():
    reader = FakeReader({0: (BOXES, SCORES)})
    out = LoadPriors(max_priors=2)(results_for(reader))
    np.testing.assert_array_equal(out['gt_bboxes'].tensor.numpy(),
                                  [[0, 0, 20, 10], [1, 2, 3, 4]])
    out = LoadPriors(max_priors=0, min_size=0)(results_for(reader))
    assert out['gt_bboxes'].tensor.shape == (0, 4)


def test_empty_priors():
    reader = FakeReader({0: (np.zeros((0, 4)), np.zeros(0))})
    out = LoadPriors(max_priors=30)(results_for(reader))
    assert out['gt_bboxes'].tensor.shape == (0, 4)
    assert out['gt_bboxes_labels'].shape == (0, )


def test_must_run_on_the_original_image():
    reader = FakeReader({0: (BOXES, SCORES)})
    resized = TRANSFORMS.build(dict(type='Resize', scale=(40, 25)))(
        results_for(reader))
    with pytest.raises(ValueError, match='right after the image is loaded'):
        LoadPriors()(resized)
    with pytest.raises(KeyError, match='SelfSupervisedDataset'):
        LoadPriors()(dict(img_shape=(5, 5), ori_shape=(5, 5)))
    with pytest.raises(ValueError, match='max_priors'):
        LoadPriors(max_priors=-1)
