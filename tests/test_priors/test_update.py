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
    return (np.concatenate([xy, xy + wh], 1).astype(np.float32),
            rng.uniform(0.1, 1, n).astype(np.float32))


@pytest.mark.parametrize('seed', range(5))
def test_modes(seed):
    rng = np.random.default_rng(seed)
    prev, cur = boxes(rng, 12), boxes(rng, 9)
    # box_smooth: exactly the Box Smooth Module, then the cap.
    b, s = update_priors(prev, cur, 'box_smooth', 0.45, 0.55, None)
    ref_b, ref_s = box_smooth(*(torch.from_numpy(x) for x in prev + cur), 0.45,
                              0.55)
    np.testing.assert_allclose(s, ref_s.numpy(), rtol=1e-6)
    assert sorted(map(tuple, b.round(3))) == sorted(
        map(tuple,
            ref_b.numpy().round(3)))
    # direct: the current priors; fixed: the previous ones.
    b, s = update_priors(prev, cur, 'direct', max_priors=None)
    assert sorted(map(tuple, b)) == sorted(map(tuple, cur[0]))
    b, s = update_priors(prev, cur, 'fixed', max_priors=None)
    assert sorted(map(tuple, b)) == sorted(map(tuple, prev[0]))
    # nms: every current prior plus the previous ones none of them overlaps.
    b, _ = update_priors(prev, cur, 'nms', iou_thr=0.3, max_priors=None)
    iou = bbox_overlaps(torch.from_numpy(prev[0]), torch.from_numpy(cur[0]))
    kept_prev = {tuple(x) for x, o in zip(prev[0], iou.amax(1)) if o <= 0.3}
    assert set(map(tuple, b)) == kept_prev | set(map(tuple, cur[0]))


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
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    for mode in ('box_smooth', 'direct', 'nms', 'fixed'):
        b, s = update_priors(empty, empty, mode)
        assert b.shape == (0, 4) and s.shape == (0, )
    with pytest.raises(ValueError, match='unknown prior update mode'):
        update_priors(empty, empty, 'ema')
