# Copyright (c) mmdet_joindet contributors. All rights reserved.
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

from mmdet_joindet.priors.box_smooth import box_smooth

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
IMG_W, IMG_H = 640., 480.


@pytest.fixture(scope='module')
def wbf():
    """The numpy WBF module of ``ensemble-boxes==1.0.9``, loaded by path.

    ``import ensemble_boxes`` would import numba through the package's
    ``__init__``; its ``ensemble_boxes_wbf.py`` only needs numpy.
    """
    spec = importlib.util.find_spec('ensemble_boxes')
    assert spec is not None, 'ensemble-boxes==1.0.9 is a test requirement'
    path = osp.join(spec.submodule_search_locations[0],
                    'ensemble_boxes_wbf.py')
    module_spec = importlib.util.spec_from_file_location(
        '_ensemble_boxes_wbf', path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _run_wbf(wbf, box_sets, score_sets, weights, iou_thr=0.55):
    """WBF on pixel boxes; returns fused pixel boxes and WBF's scores."""
    scale = np.array([IMG_W, IMG_H, IMG_W, IMG_H])
    boxes, scores, _ = wbf.weighted_boxes_fusion(
        [b / scale for b in box_sets],
        score_sets, [np.zeros(len(s)) for s in score_sets],
        weights=weights,
        iou_thr=iou_thr,
        skip_box_thr=0.0,
        conf_type='avg')
    return np.asarray(boxes).reshape(-1, 4) * scale, np.asarray(scores)


def _iou(a, b):
    iw = max(0., min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0., min(a[3], b[3]) - max(a[1], b[1]))
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    union = area_a + area_b - iw * ih
    return iw * ih / union if union > 0 else 0.


def _reference(prev, prev_s, cur, cur_s, m, iou_thr=0.55):
    """Plain-Python transcription of JoinDet eq. 8 with WBF clustering.

    Fused boxes are recomputed from the member lists at every join. Returns
    fused boxes, plain-mean scores and the clusters' members
    ``(weight, score, box)``, for clusters with a positive weight sum, in
    opening order.
    """
    items = [(m * s, 0, i, m, s, list(b))
             for i, (b, s) in enumerate(zip(prev.tolist(), prev_s.tolist()))]
    items += [((1 - m) * s, 1, i, 1 - m, s, list(b))
              for i, (b, s) in enumerate(zip(cur.tolist(), cur_s.tolist()))]
    items.sort(key=lambda t: (-t[0], t[1], t[2]))
    clusters, fused = [], []
    for _, _, _, w, s, b in items:
        best, best_iou = -1, iou_thr
        for k, f in enumerate(fused):
            iou = _iou(b, f)
            if iou > best_iou:
                best, best_iou = k, iou
        if best < 0:
            clusters.append([(w, s, b)])
            fused.append(b)
            continue
        clusters[best].append((w, s, b))
        total = sum(w * s for w, s, _ in clusters[best])
        if total > 0:
            fused[best] = [
                sum(w * s * b[c] for w, s, b in clusters[best]) / total
                for c in range(4)
            ]
    kept = [k for k, c in enumerate(clusters) if sum(w * s for w, s, _ in c)]
    boxes = np.array([fused[k] for k in kept]).reshape(-1, 4)
    scores = np.array([np.mean([s for _, s, _ in clusters[k]]) for k in kept])
    return boxes, scores, [clusters[k] for k in kept]


def _match(boxes, expected, atol):
    """Indices pairing each row of ``boxes`` with one of ``expected``."""
    assert boxes.shape == expected.shape
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    dist = np.abs(boxes[:, None] - expected[None]).max(-1)
    idx = dist.argmin(1)
    assert len(set(idx.tolist())) == len(idx), 'boxes are not a permutation'
    assert dist[np.arange(len(idx)), idx].max() <= atol
    return idx


def _scene(rng, num_objects=8, max_copies=4, num_noise=4):
    """Previous and current pixel boxes: jittered copies of some objects."""

    def jitter(objects, counts):
        boxes = np.repeat(objects, counts, axis=0)
        sizes = np.repeat(objects[:, 2:] - objects[:, :2], counts, axis=0)
        boxes = boxes + rng.normal(size=boxes.shape) * 0.12 * np.tile(sizes, 2)
        noise = rng.uniform(
            0, 1, size=(num_noise, 4)) * [IMG_W, IMG_H, IMG_W, IMG_H]
        boxes = np.concatenate([boxes, noise])
        # Inside the image (WBF clips to it), at least 2 pixels wide.
        lo = np.minimum(boxes[:, :2], boxes[:, 2:])
        lo = lo.clip(0, [IMG_W - 2, IMG_H - 2])
        hi = np.maximum(np.maximum(boxes[:, :2], boxes[:, 2:]), lo + 2)
        return np.concatenate([lo, hi.clip(max=[IMG_W, IMG_H])], 1)

    xy = rng.uniform(0, 1, (num_objects, 2)) * [IMG_W - 120, IMG_H - 120]
    objects = np.concatenate([xy, xy + rng.uniform(20, 120, (num_objects, 2))],
                             1)
    prev = jitter(objects, rng.integers(0, max_copies, num_objects))
    cur = jitter(objects, rng.integers(0, max_copies, num_objects))
    prev_s = rng.uniform(0.05, 1, len(prev))
    cur_s = rng.uniform(0.05, 1, len(cur))
    return prev, prev_s, cur, cur_s


def _smooth_np(prev, prev_s, cur, cur_s, m, iou_thr=0.55):
    boxes, scores = box_smooth(
        torch.from_numpy(prev), torch.from_numpy(prev_s),
        torch.from_numpy(cur), torch.from_numpy(cur_s), m, iou_thr)
    return boxes.numpy(), scores.numpy()


@pytest.mark.parametrize('momentum', [0.45, 0.1, 0.3, 0.6, 0.9])
def test_matches_wbf_and_eq8(wbf, momentum):
    num_mixed = 0
    for seed in range(26):
        rng = np.random.default_rng(seed)
        if seed < 25:
            prev, prev_s, cur, cur_s = _scene(rng)
        else:
            # A dense scene: 150 + 150 boxes, many overlapping clusters.
            prev, prev_s, cur, cur_s = _scene(
                rng, num_objects=60, max_copies=5, num_noise=30)
        iou_thr = 0.55 if seed % 2 else 0.4
        boxes, scores = _smooth_np(prev, prev_s, cur, cur_s, momentum, iou_thr)
        assert (np.diff(scores) <= 0).all()

        # Fused coordinates: WBF (float32 inside) is the outside reference.
        wbf_boxes, wbf_scores = _run_wbf(wbf, [prev, cur], [prev_s, cur_s],
                                         [momentum, 1 - momentum], iou_thr)
        _match(boxes, wbf_boxes, atol=1e-3)

        # Scores: eq. 8's plain cluster mean, from the reference's clusters;
        # the reference's clusters give WBF's own 'avg' score as well.
        ref_boxes, ref_scores, clusters = _reference(prev, prev_s, cur, cur_s,
                                                     momentum, iou_thr)
        idx = _match(ref_boxes, wbf_boxes, atol=1e-3)
        wbf_avg = [
            np.mean([w * s for w, s, _ in c]) * min(2, len(c))
            for c in clusters
        ]
        np.testing.assert_allclose(wbf_avg, wbf_scores[idx], rtol=1e-5)
        idx = _match(boxes, ref_boxes, atol=1e-9)
        np.testing.assert_allclose(scores, ref_scores[idx], rtol=1e-12)
        num_mixed += sum(len({w for w, _, _ in c}) == 2 for c in clusters)
    # The scenes do fuse previous with current boxes.
    assert num_mixed > 100


def test_hand_computed_cluster():
    prev = torch.tensor([[0., 0., 10., 10.]])
    cur = torch.tensor([[1., 1., 11., 11.], [50., 50., 60., 60.]])
    prev_s, cur_s = torch.tensor([0.8]), torch.tensor([0.4, 0.9])
    boxes, scores = box_smooth(prev, prev_s, cur, cur_s, momentum=0.45)
    w_prev, w_cur = 0.45 * 0.8, 0.55 * 0.4
    coord = (w_prev * 0 + w_cur * 1) / (w_prev + w_cur)
    torch.testing.assert_close(
        boxes,
        torch.tensor([[50., 50., 60., 60.],
                      [coord, coord, coord + 10, coord + 10]]))
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.6]))


def test_momentum_one_never_updates(wbf):
    rng = np.random.default_rng(7)
    for _ in range(10):
        # Previous boxes on a grid: no two overlap, so each is its cluster.
        cols, rows = np.meshgrid(np.arange(5) * 120., np.arange(4) * 110.)
        xy = np.stack([cols.ravel(), rows.ravel()], 1)
        xy = xy + rng.uniform(0, 20, xy.shape)
        prev = np.concatenate([xy, xy + rng.uniform(30, 90, xy.shape)], 1)
        prev_s = rng.uniform(0.05, 1, len(prev))
        _, _, cur, cur_s = _scene(rng)
        cur = np.concatenate([cur, prev[:5] + 1.])
        cur_s = np.concatenate([cur_s, rng.uniform(0.05, 1, 5)])
        boxes, scores = _smooth_np(prev, prev_s, cur, cur_s, 1.0)
        idx = _match(boxes, prev, atol=0)
        # Current boxes still count in the plain mean of eq. 8.
        ref_boxes, ref_scores, _ = _reference(prev, prev_s, cur, cur_s, 1.0)
        np.testing.assert_allclose(
            scores, ref_scores[_match(boxes, ref_boxes, atol=1e-9)])
        assert (scores[idx < 5] != prev_s[idx[idx < 5]]).all()

    # Overlapping previous boxes: their own WBF clusters.
    prev, prev_s, cur, cur_s = _scene(np.random.default_rng(8))
    boxes, _ = _smooth_np(prev, prev_s, cur, cur_s, 1.0)
    _match(boxes, _run_wbf(wbf, [prev], [prev_s], [1.])[0], atol=1e-3)


def test_momentum_zero_replaces(wbf):
    for seed in range(10):
        prev, prev_s, cur, cur_s = _scene(np.random.default_rng(seed))
        boxes, scores = _smooth_np(prev, prev_s, cur, cur_s, 0.0)
        _match(boxes, _run_wbf(wbf, [cur], [cur_s], [1.])[0], atol=1e-3)
        ref_boxes, ref_scores, _ = _reference(prev, prev_s, cur, cur_s, 0.0)
        idx = _match(boxes, ref_boxes, atol=1e-9)
        np.testing.assert_allclose(scores, ref_scores[idx], rtol=1e-12)


def test_empty_inputs(wbf):
    prev, prev_s, cur, cur_s = _scene(np.random.default_rng(3))
    empty, empty_s = np.zeros((0, 4)), np.zeros(0)
    boxes, scores = box_smooth(
        torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, 4), torch.zeros(0))
    assert boxes.shape == (0, 4) and scores.shape == (0, )
    assert boxes.dtype == scores.dtype == torch.float32
    one_side = {
        'prev': (prev, prev_s, (prev, prev_s, empty, empty_s)),
        'cur': (cur, cur_s, (empty, empty_s, cur, cur_s)),
    }
    for m in (0.45, 0.0, 1.0):
        # One side only: its own clusters, whatever m, unless its weight is
        # 0: then every cluster is dropped.
        for side, (side_boxes, side_s, args) in one_side.items():
            boxes, scores = _smooth_np(*args, m)
            if (m if side == 'prev' else 1 - m) == 0:
                assert boxes.shape == (0, 4) and scores.shape == (0, )
                continue
            wbf_boxes, _ = _run_wbf(wbf, [side_boxes], [side_s], [1.])
            _match(boxes, wbf_boxes, atol=1e-3)
            ref_boxes, ref_scores, _ = _reference(*args, m)
            idx = _match(boxes, ref_boxes, atol=1e-9)
            np.testing.assert_allclose(scores, ref_scores[idx])


def test_zero_scores():
    prev = torch.tensor([[0., 0., 10., 10.], [100., 100., 110., 110.]])
    cur = torch.tensor([[0., 0., 10., 11.], [200., 0., 210., 10.]])
    boxes, scores = box_smooth(prev, torch.tensor([0.6, 0.0]), cur,
                               torch.tensor([0.0, 0.0]))
    # The zero-score current box joins the first cluster: it lowers the mean
    # but does not move the box; clusters of zero-score boxes are dropped.
    assert torch.equal(boxes, prev[:1])
    torch.testing.assert_close(scores, torch.tensor([0.3]))


def test_sorted_and_stable_ties():
    prev = torch.tensor([[0., 0., 10., 10.], [20., 0., 30., 10.]])
    cur = torch.tensor([[40., 0., 50., 10.], [60., 0., 70., 10.]])
    scores = torch.full((2, ), 0.5)
    # Equal keys: previous boxes first, then input order.
    boxes, out = box_smooth(prev, scores, cur, scores, momentum=0.5)
    assert torch.equal(boxes, torch.cat([prev, cur]))
    assert torch.equal(out, torch.full((4, ), 0.5))
    boxes, out = box_smooth(prev, torch.tensor([0.2, 0.4]), cur,
                            torch.tensor([0.9, 0.4]))
    # Clusters open in key order cur0, cur1, prev1, prev0; the equal scores
    # of cur1 and prev1 keep that order.
    assert out.tolist() == pytest.approx([0.9, 0.4, 0.4, 0.2])
    assert torch.equal(boxes, torch.stack([cur[0], cur[1], prev[1], prev[0]]))


def test_units_and_offsets():
    prev, prev_s, cur, cur_s = _scene(np.random.default_rng(11))
    boxes, scores = _smooth_np(prev, prev_s, cur, cur_s, 0.45)
    shift = np.array([-5e3, 1e4, -5e3, 1e4])
    for scale in (1 / IMG_W, 1., 37.5):
        moved, moved_s = _smooth_np(prev * scale + shift, prev_s,
                                    cur * scale + shift, cur_s, 0.45)
        np.testing.assert_allclose((moved - shift) / scale, boxes, atol=1e-6)
        np.testing.assert_array_equal(moved_s, scores)


@pytest.mark.parametrize('device', DEVICES)
def test_dtype_and_device(device):
    prev, prev_s, cur, cur_s = _scene(np.random.default_rng(5))
    expected, expected_s = _smooth_np(prev, prev_s, cur, cur_s, 0.45)
    for box_dtype, score_dtype in ((torch.float32, torch.float32),
                                   (torch.float64, torch.float16)):
        boxes, scores = box_smooth(
            torch.from_numpy(prev).to(device, box_dtype),
            torch.from_numpy(prev_s).to(device, score_dtype),
            torch.from_numpy(cur).to(device, box_dtype),
            torch.from_numpy(cur_s).to(device, score_dtype))
        assert boxes.device.type == scores.device.type == device
        assert boxes.dtype == box_dtype and scores.dtype == score_dtype
        assert boxes.shape[0] == scores.shape[0] > 0
    # Mixed dtypes promote; float32 inputs match float64 up to rounding.
    boxes, scores = box_smooth(
        torch.from_numpy(prev).float(),
        torch.from_numpy(prev_s).float(), torch.from_numpy(cur),
        torch.from_numpy(cur_s).float())
    assert boxes.dtype == torch.float64 and scores.dtype == torch.float32
    idx = _match(boxes.numpy(), expected, atol=1e-3)
    np.testing.assert_allclose(scores.numpy(), expected_s[idx], rtol=1e-6)


def test_bad_inputs():
    boxes = torch.tensor([[0., 0., 10., 10.]])
    scores = torch.tensor([0.5])
    good = (boxes, scores, boxes, scores)

    def check(match, *args, **kwargs):
        with pytest.raises(ValueError, match=match):
            box_smooth(*args, **kwargs)

    check(r'prev_boxes .*\[N, 4\]', boxes[:, :3], scores, boxes, scores)
    check(r'cur_boxes .*\[N, 4\]', boxes, scores, boxes[0], scores)
    check('prev_boxes .*float', boxes.long(), scores, boxes, scores)
    check(r'cur_scores .*\[1\]', boxes, scores, boxes, scores[:0])
    check('prev_scores .*float', boxes, scores.long(), boxes, scores)
    for bad in (float('nan'), float('inf')):
        check('non-finite', boxes + bad, scores, boxes, scores)
        check('non-finite', boxes, scores, boxes, scores * bad)
    check('x2 >= x1', boxes.flip(1), scores, boxes, scores)
    check('>= 0', boxes, scores, boxes, -scores)
    for m in (-0.1, 1.1, float('nan')):
        check('momentum', *good, momentum=m)
    for thr in (-0.1, 1.5, float('nan')):
        check('iou_thr', *good, iou_thr=thr)
