# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""update_priors: the paper's Box Smooth update and Table 6's ablations."""
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import bbox_overlaps

from mmdet_joindet.priors import box_smooth, cap_priors, update_priors


def boxes(rng, n):
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    return (torch.from_numpy(np.concatenate([xy, xy + wh], 1)).float(),
            torch.from_numpy(rng.uniform(0.1, 1, n)).float())


def rows(b):
    return sorted(map(tuple, b.tolist()))


@pytest.mark.parametrize('seed', range(5))
def test_modes(seed):
    rng = np.random.default_rng(seed)
    prev, cur = boxes(rng, 12), boxes(rng, 9)
    # box_smooth: exactly the Box Smooth Module, then the cap.
    b, s = update_priors(prev, cur, 'box_smooth', 0.45, 0.55, None)
    assert isinstance(b, torch.Tensor) and b.dtype == torch.float32
    ref_b, ref_s = box_smooth(*prev, *cur, 0.45, 0.55)
    # sorted by score: the same set, in cap_priors' order
    np.testing.assert_allclose(
        s.numpy(), np.sort(ref_s.numpy())[::-1], rtol=1e-6)
    assert rows(b.round(decimals=3)) == rows(ref_b.round(decimals=3))
    # direct: the current priors; fixed: the previous ones.
    b, s = update_priors(prev, cur, 'direct', max_priors=None)
    assert rows(b) == rows(cur[0])
    b, s = update_priors(prev, cur, 'fixed', max_priors=None)
    assert rows(b) == rows(prev[0])
    # nms: every current prior plus the previous ones none of them overlaps.
    b, _ = update_priors(prev, cur, 'nms', iou_thr=0.3, max_priors=None)
    iou = bbox_overlaps(prev[0], cur[0])
    kept_prev = {
        tuple(x)
        for x, o in zip(prev[0].tolist(), iou.amax(1)) if o <= 0.3
    }
    assert set(rows(b)) == kept_prev | set(rows(cur[0]))


def test_cap_orders_by_score_then_area():
    b = np.array([[0, 0, 1, 1], [0, 0, 5, 5], [0, 0, 3, 3], [0, 0, 2, 2]],
                 np.float32)
    s = np.array([1, 1, 0.5, 1], np.float32)
    cb, cs = cap_priors(b, s, 3)
    np.testing.assert_array_equal(cb[:, 2], [5, 2, 1])
    np.testing.assert_array_equal(cs, [1, 1, 1])


def test_cap_is_one_order_for_arrays_and_tensors():
    """Against a brute-force sort on (-score, -area, index), with many ties
    in both keys; arrays and tensors give the same result."""
    rng = np.random.default_rng(3)
    xy = rng.integers(0, 5, (60, 2)).astype(np.float32)
    wh = rng.integers(1, 4, (60, 2)).astype(np.float32)
    b = np.concatenate([xy, xy + wh], 1)
    s = rng.integers(0, 4, 60).astype(np.float32) / 4
    area = wh[:, 0] * wh[:, 1]
    ref = sorted(range(60), key=lambda i: (-s[i], -area[i], i))[:25]
    nb, ns = cap_priors(b, s, 25)
    tb, ts = cap_priors(torch.from_numpy(b), torch.from_numpy(s), 25)
    assert isinstance(nb, np.ndarray) and isinstance(tb, torch.Tensor)
    np.testing.assert_array_equal(nb, b[ref])
    np.testing.assert_array_equal(ns, s[ref])
    np.testing.assert_array_equal(tb.numpy(), nb)
    np.testing.assert_array_equal(ts.numpy(), ns)
    assert len(cap_priors(b[:0], s[:0], 5)[0]) == 0
    assert len(cap_priors(b, s, None)[0]) == 60


def test_empty_and_bad_mode():
    empty = (torch.zeros(0, 4), torch.zeros(0))
    for mode in ('box_smooth', 'direct', 'nms', 'fixed'):
        b, s = update_priors(empty, empty, mode)
        assert b.shape == (0, 4) and s.shape == (0, )
    with pytest.raises(ValueError, match='unknown prior update mode'):
        update_priors(empty, empty, 'ema')
