# Copyright (c) mmdet_joindet contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

from mmdet_joindet.datasets import CopyPasteSmallPriors


def make_results(boxes, shape=(96, 128)):
    rng = np.random.default_rng(0)
    return dict(
        img=rng.integers(0, 256, shape + (3, ), dtype=np.uint8),
        img_shape=shape,
        gt_bboxes=HorizontalBoxes(torch.tensor(boxes, dtype=torch.float32)),
        gt_bboxes_labels=np.arange(len(boxes), dtype=np.int64),
        gt_ignore_flags=np.array([False, True, False][:len(boxes)]))


def test_pastes_the_right_pixels_and_adds_boxes():
    np.random.seed(0)
    boxes = [[4, 4, 14, 12], [40, 30, 100, 90], [110.3, 2.6, 120.2, 9.1]]
    results = make_results(boxes)
    original = results['img'].copy()
    transform = CopyPasteSmallPriors(max_area=200, max_pastes=6, prob=1.0)
    out = transform(results)
    new = out['gt_bboxes'].tensor.numpy()
    assert len(new) > 3
    np.testing.assert_array_equal(new[:3], np.float32(boxes))
    # every paste copies a small source (box 0 or box 2) with its label,
    # translated by whole pixels; replaying the pastes in order gives the
    # output image exactly (pasted pixels right, nothing else changed)
    expected = original.copy()
    for box, label in zip(new[3:], out['gt_bboxes_labels'][3:]):
        assert label in (0, 2)
        src = np.array(boxes[label])
        shift = box - src
        dx, dy = np.round(shift[:2]).astype(int)
        np.testing.assert_allclose(shift, [dx, dy, dx, dy], atol=1e-4)
        # the patch is the source box rounded outwards to whole pixels
        x1, y1 = int(np.floor(src[0])), int(np.floor(src[1]))
        x2, y2 = int(np.ceil(src[2])), int(np.ceil(src[3]))
        nx, ny = x1 + dx, y1 + dy
        assert 0 <= nx and nx + x2 - x1 <= 128
        assert 0 <= ny and ny + y2 - y1 <= 96
        expected[ny:ny + y2 - y1, nx:nx + x2 - x1] = original[y1:y2, x1:x2]
    np.testing.assert_array_equal(out['img'], expected)
    # IoU < 0.3 with every box that was there when it was pasted
    for k in range(3, len(new)):
        assert max(iou(new[k], new[j]) for j in range(k)) < 0.3
    np.testing.assert_array_equal(
        out['gt_ignore_flags'],
        np.array([False, True, False])[np.r_[0:3,
                                             out['gt_bboxes_labels'][3:]]])
    assert out['gt_bboxes_labels'].dtype == np.int64
    assert isinstance(out['gt_bboxes'], HorizontalBoxes)


def test_no_paste_cases():
    np.random.seed(0)
    boxes = [[40, 30, 100, 90]]  # nothing small
    results = make_results(boxes)
    img = results['img'].copy()
    out = CopyPasteSmallPriors(prob=1.0)(results)
    np.testing.assert_array_equal(out['img'], img)
    assert len(out['gt_bboxes']) == 1
    out = CopyPasteSmallPriors(prob=0.0)(make_results([[4, 4, 14, 12]]))
    assert len(out['gt_bboxes']) == 1
    # empty priors
    results = make_results(np.zeros((0, 4)))
    assert len(CopyPasteSmallPriors(prob=1.0)(results)['gt_bboxes']) == 0
    # no room: the small box covers most of a tiny image
    out = CopyPasteSmallPriors(prob=1.0)(
        make_results([[0, 0, 9, 9]], shape=(10, 10)))
    assert len(out['gt_bboxes']) == 1


def test_probability_and_config():
    np.random.seed(1)
    t = TRANSFORMS.build(
        dict(type='CopyPasteSmallPriors', max_area=200, prob=0.5))
    pasted = sum(
        len(t(make_results([[4, 4, 14, 12]]))['gt_bboxes']) > 1
        for _ in range(200))
    assert 70 < pasted < 130
    with pytest.raises(ValueError, match='prob'):
        CopyPasteSmallPriors(prob=2)
    with pytest.raises(ValueError, match='gt_masks'):
        t(dict(make_results([[4, 4, 14, 12]]), gt_masks=None))


def iou(a, b):
    """Brute-force IoU of two xyxy boxes (the reference of the paste
    rule)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (union - inter)
