# Copyright (c) mmdet_joindet contributors. All rights reserved.
from collections import deque

import numpy as np
import pytest
import torch

from mmdet_joindet.priors.region import (batched_region_boxes, foreground_mask,
                                         instance_keep, region_boxes)

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def _fg_reference(eigen_map, valid):
    """Per-image numpy loop: map > mean over valid cells, False on pads."""
    out = np.zeros(eigen_map.shape, dtype=bool)
    for b in range(eigen_map.shape[0]):
        cells = eigen_map[b][valid[b]]
        if cells.size:
            out[b] = (eigen_map[b] > cells.mean()) & valid[b]
    return out


def _components_reference(mask):
    """Boxes of 4-connected components by BFS, found in raster order."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    boxes = []
    for i in range(h):
        for j in range(w):
            if not mask[i, j] or seen[i, j]:
                continue
            seen[i, j] = True
            queue = deque([(i, j)])
            x1, y1, x2, y2 = j, i, j + 1, i + 1
            while queue:
                r, c = queue.popleft()
                x1, y1 = min(x1, c), min(y1, r)
                x2, y2 = max(x2, c + 1), max(y2, r + 1)
                for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                    if (0 <= rr < h and 0 <= cc < w and mask[rr, cc]
                            and not seen[rr, cc]):
                        seen[rr, cc] = True
                        queue.append((rr, cc))
            boxes.append((x1, y1, x2, y2))
    return boxes


def _keep_reference(boxes, mask, thr):
    """Double loop over boxes and cells with the half-open centre rule."""
    h, w = mask.shape
    keep = []
    for x1, y1, x2, y2 in boxes.tolist():
        num_fg = num_total = 0
        for i in range(h):
            for j in range(w):
                if x1 <= j + 0.5 < x2 and y1 <= i + 0.5 < y2:
                    num_total += 1
                    num_fg += int(mask[i, j])
        keep.append(num_total > 0 and num_fg / num_total > thr)
    return keep


def _random_masks(rng):
    shapes = [(1, 1), (1, 9), (9, 1), (2, 2), (7, 13), (16, 16), (23, 5)]
    for h, w in shapes:
        yield np.zeros((h, w), dtype=bool)
        yield np.ones((h, w), dtype=bool)
        for density in (0.1, 0.3, 0.5, 0.7, 0.9):
            for _ in range(3):
                yield rng.random((h, w)) < density


def test_foreground_mask_matches_reference():
    rng = np.random.default_rng(0)
    for b, h, w in [(1, 1, 1), (3, 5, 7), (4, 12, 9)]:
        eigen_map = rng.normal(size=(b, h, w))
        valid = np.ones((b, h, w), dtype=bool)
        # Bottom-right padding as mmdet pads, then a random valid pattern.
        valid[0, h // 2 + 1:, :] = False
        valid[0, :, w // 2 + 1:] = False
        if b > 1:
            valid[1] = rng.random((h, w)) < 0.6
        if b > 2:
            valid[2] = False
        out = foreground_mask(
            torch.from_numpy(eigen_map), torch.from_numpy(valid))
        assert out.dtype == torch.bool and out.shape == (b, h, w)
        np.testing.assert_array_equal(out.numpy(),
                                      _fg_reference(eigen_map, valid))
        out = foreground_mask(torch.from_numpy(eigen_map))
        np.testing.assert_array_equal(
            out.numpy(), _fg_reference(eigen_map, np.ones_like(valid)))


def test_foreground_mask_padding_values_are_ignored():
    eigen_map = torch.tensor([[[1., 2., 3., -float('inf')], [4., 5., 6.,
                                                             1e30]]])
    valid = torch.tensor([[[True, True, True, False],
                           [True, True, True, False]]])
    expected = torch.tensor([[[False, False, False, False],
                              [True, True, True, False]]])
    assert torch.equal(foreground_mask(eigen_map, valid), expected)
    # float32 maps work too; no valid cell at all gives an empty mask.
    assert not foreground_mask(eigen_map.float(),
                               torch.zeros_like(valid)).any()


def test_foreground_mask_errors():
    eigen_map = torch.zeros(3, 4, 4)
    eigen_map[2, 1, 1] = float('nan')
    with pytest.raises(ValueError, match=r'image\(s\) \[2\]'):
        foreground_mask(eigen_map)
    eigen_map = torch.zeros(2, 4, 4)
    eigen_map[1, 0, 0] = float('inf')
    with pytest.raises(ValueError, match=r'\[1\]'):
        foreground_mask(eigen_map)
    with pytest.raises(ValueError, match='float'):
        foreground_mask(torch.zeros(4, 4))
    with pytest.raises(ValueError, match='float'):
        foreground_mask(torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='valid'):
        foreground_mask(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match='valid'):
        foreground_mask(
            torch.zeros(1, 4, 4), torch.ones(1, 4, 3, dtype=torch.bool))


def test_region_boxes_matches_flood_fill():
    rng = np.random.default_rng(1)
    for mask in _random_masks(rng):
        boxes = region_boxes(torch.from_numpy(mask))
        assert boxes.dtype == torch.float32 and boxes.shape[1] == 4
        expected = _components_reference(mask)
        # Same set of boxes, in label (raster) order.
        assert [tuple(b) for b in boxes.int().tolist()] == expected


def test_region_boxes_small_cases():
    mask = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 1], [1, 0, 1, 1]],
                        dtype=torch.bool)
    expected = torch.tensor([[0., 0., 2., 1.], [2., 0., 4., 3.],
                             [0., 2., 1., 3.]])
    assert torch.equal(region_boxes(mask), expected)
    # Diagonal neighbours are not connected.
    eye = torch.eye(3, dtype=torch.bool)
    assert region_boxes(eye).tolist() == [[i, i, i + 1, i + 1]
                                          for i in range(3)]
    assert region_boxes(torch.ones(
        1, 1, dtype=torch.bool)).tolist() == [[0, 0, 1, 1]]
    for empty in (torch.zeros(5, 4, dtype=torch.bool),
                  torch.zeros(0, 3, dtype=torch.bool)):
        boxes = region_boxes(empty)
        assert boxes.shape == (0, 4) and boxes.dtype == torch.float32
    with pytest.raises(ValueError, match='bool'):
        region_boxes(torch.ones(3, 3))
    with pytest.raises(ValueError, match=r'\[h, w\]'):
        region_boxes(torch.ones(1, 3, 3, dtype=torch.bool))


def test_batched_region_boxes_equals_per_image():
    rng = np.random.default_rng(2)
    for b, h, w in [(1, 1, 1), (5, 6, 7), (8, 11, 3)]:
        masks = rng.random((b, h, w)) < rng.random((b, 1, 1))
        masks[0] = False
        masks[-1] = True
        masks = torch.from_numpy(masks)
        batched = batched_region_boxes(masks)
        assert len(batched) == b
        for i in range(b):
            assert torch.equal(batched[i], region_boxes(masks[i]))
    # A component touching the same cells in consecutive images stays split.
    masks = torch.ones(3, 2, 2, dtype=torch.bool)
    assert [x.tolist()
            for x in batched_region_boxes(masks)] == [[[0, 0, 2, 2]]] * 3
    assert batched_region_boxes(torch.zeros(0, 4, 4, dtype=torch.bool)) == []


def _random_keep_boxes(rng, h, w, k):
    x = rng.uniform(-3, w + 3, size=(k, 2))
    y = rng.uniform(-3, h + 3, size=(k, 2))
    boxes = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], 1)
    # Some integer and half-integer coordinates (cell edges and centres),
    # and some degenerate boxes (x2 <= x1 or y2 <= y1).
    boxes[:k // 4] = np.round(boxes[:k // 4])
    boxes[k // 4:k // 2] = np.round(boxes[k // 4:k // 2] * 2) / 2
    boxes[-3:, 2] = boxes[-3:, 0] - rng.uniform(0, 1, 3)
    boxes[-5, 3] = boxes[-5, 1]
    return boxes


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_instance_keep_matches_double_loop(dtype):
    rng = np.random.default_rng(3)
    for h, w in [(1, 1), (4, 6), (9, 5), (12, 12)]:
        for density in (0.2, 0.5, 0.8):
            mask = rng.random((h, w)) < density
            boxes = torch.from_numpy(_random_keep_boxes(rng, h, w, 40))
            boxes = boxes.to(dtype)
            for thr in (0.5, 0.0, 0.3):
                keep = instance_keep(boxes, torch.from_numpy(mask), thr)
                assert keep.dtype == torch.bool and keep.shape == (40, )
                assert keep.tolist() == _keep_reference(
                    boxes.double().numpy(), mask, thr)


def test_instance_keep_small_cases():
    mask = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 1], [1, 0, 1, 1]],
                        dtype=torch.bool)
    boxes = torch.tensor([
        [0., 0., 2., 1.],  # 2 / 2 cells
        [0.4, 0.4, 1.6, 1.6],  # centres 0.5 and 1.5 inside: 2 / 4
        [0.5, 0.5, 1.5, 1.5],  # only cell (0, 0): 1 / 1
        [0.6, 0.6, 1.5, 1.5],  # no centre inside
        [3., 0., 2., 5.],  # degenerate
        [-5., -5., 10., 10.],  # whole grid: 7 / 12
    ])
    assert instance_keep(
        boxes, mask).tolist() == [True, False, True, False, False, True]
    empty = instance_keep(boxes[:0], mask)
    assert empty.shape == (0, ) and empty.dtype == torch.bool
    with pytest.raises(ValueError, match='NaN'):
        instance_keep(torch.full((1, 4), float('nan')), mask)
    with pytest.raises(ValueError, match=r'\[K, 4\]'):
        instance_keep(boxes[:, :3], mask)
    with pytest.raises(ValueError, match='bool'):
        instance_keep(boxes, mask.float())


@pytest.mark.parametrize('device', DEVICES)
def test_device_is_preserved(device):
    eigen_map = torch.randn(2, 5, 6, device=device)
    fg = foreground_mask(eigen_map)
    assert fg.device == eigen_map.device
    boxes = region_boxes(fg[0])
    assert boxes.device == eigen_map.device
    assert all(b.device == eigen_map.device for b in batched_region_boxes(fg))
    keep = instance_keep(boxes, fg[0])
    assert keep.device == eigen_map.device
    assert torch.equal(keep.cpu(), instance_keep(boxes.cpu(), fg[0].cpu()))
