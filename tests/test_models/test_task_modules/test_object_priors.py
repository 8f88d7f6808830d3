# Copyright (c) mmdet_joindet contributors. All rights reserved.
import cv2
import numpy as np
import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

import mmdet_joindet  # noqa: F401  (registers the generators)
from mmdet_joindet.models.task_modules import (BaseObjectPriorGenerator,
                                               EigenRegionPriors)
from mmdet_joindet.priors import instance_keep

ODD_SIZES = [(97, 131), (33, 257), (1, 50), (50, 1), (1, 1), (5, 300)]

# ---------------------------------------------------------------- helpers


def _build(type_, **kwargs):
    return TASK_UTILS.build(dict(type=type_, **kwargs))


def _check_priors(priors, sizes, max_priors):
    """Per image (W, H): valid boxes in its pixels, sorted, capped."""
    assert len(priors) == len(sizes)
    for res, (w, h) in zip(priors, sizes):
        assert isinstance(res, InstanceData)
        boxes, scores = res.bboxes, res.scores
        assert boxes.dtype == scores.dtype == torch.float32
        assert boxes.dim() == 2 and boxes.shape[1] == 4
        assert scores.shape == (len(boxes), )
        assert len(boxes) <= max_priors
        assert torch.isfinite(boxes).all()
        assert (boxes[:, :2] >= 0).all()
        assert (boxes[:, 0] < boxes[:, 2]).all()
        assert (boxes[:, 1] < boxes[:, 3]).all()
        assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        _check_order(boxes, scores)


def _check_order(boxes, scores):
    """Scores descending; equal scores: areas descending."""
    assert (scores[:-1] >= scores[1:]).all()
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ties = scores[:-1] == scores[1:]
    assert (areas[:-1][ties] >= areas[1:][ties]).all()


def _bgr_photo():
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[..., ::-1])


def _meta(img_shape,
          batch_input_shape,
          scale_factor=(1.0, 1.0),
          ori_shape=None,
          **kwargs):
    """mmdet test-mode metainfo; ori_shape derived from the resize."""
    if ori_shape is None:
        ori_shape = (round(img_shape[0] / scale_factor[1]),
                     round(img_shape[1] / scale_factor[0]))
    return dict(
        img_shape=img_shape,
        batch_input_shape=batch_input_shape,
        scale_factor=scale_factor,
        ori_shape=ori_shape,
        **kwargs)


def _without(meta, key):
    return {k: v for k, v in meta.items() if k != key}


def _planted(h, w, blocks, channels=8, seed=0, fill=None):
    """Features ``[C, h, w]``: background cells near ``e0``, cells of the
    ``blocks`` (``(x1, y1, x2, y2)`` in cell units) near ``e1``; cells
    outside ``fill`` (``(rows, cols)``, padding) hold ``e1`` features too,
    so that padding that leaks into the graph changes the result."""
    gen = torch.Generator().manual_seed(seed)
    feats = 0.05 * torch.randn(channels, h, w, generator=gen)
    feats[0] += 1
    for x1, y1, x2, y2 in blocks:
        feats[0, y1:y2, x1:x2] -= 1
        feats[1, y1:y2, x1:x2] += 1
    if fill is not None:
        rows, cols = fill
        pad = torch.ones(h, w, dtype=torch.bool)
        pad[:rows, :cols] = False
        feats[0][pad] = 0
        feats[1][pad] = 1
    return feats


# ------------------------------------------------------ base and registry


def test_registered_and_interface():
    gens = [
        _build('EigenRegionPriorGenerator'),
        _build('SelectiveSearchPriorGenerator'),
        _build('RandomCropPriorGenerator')
    ]
    assert [g.input_type for g in gens] == ['features', 'image', 'image']
    assert [g.max_priors for g in gens] == [30, 30, 10]
    for g in gens:
        assert isinstance(g, BaseObjectPriorGenerator)
    with pytest.raises(TypeError):
        BaseObjectPriorGenerator()
    with pytest.raises(ValueError, match='max_priors'):
        _build('SelectiveSearchPriorGenerator', max_priors=0)


def test_sort_and_cap_ties_by_area_stable():
    gen = _build('RandomCropPriorGenerator', num_crops=4)
    boxes = torch.tensor([[0, 0, 1, 1], [0, 0, 3, 3], [0, 0, 2, 2],
                          [1, 1, 3, 3], [0, 0, 5, 5], [0, 0, 9, 9]],
                         dtype=torch.float64)
    scores = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.5, 0.2])
    res = gen.sort_and_cap(boxes, scores)
    # score 1.0 first, larger area first, equal areas ([2], [3]) stable.
    assert res.bboxes.dtype == torch.float32
    assert res.bboxes.tolist() == [[0, 0, 3, 3], [0, 0, 2, 2], [1, 1, 3, 3],
                                   [0, 0, 1, 1]]
    assert res.scores.tolist() == [1.0] * 4
    empty = gen.sort_and_cap(torch.zeros(0, 4), torch.zeros(0))
    assert empty.bboxes.shape == (0, 4) and empty.scores.shape == (0, )


# --------------------------------------------------- selective search


def test_selective_search_boxes_valid():
    gen = _build('SelectiveSearchPriorGenerator', max_priors=30)
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ODD_SIZES
    ]
    priors = gen.generate(images)
    _check_priors(priors, [(w, h) for h, w in ODD_SIZES], 30)
    assert all(len(p) > 0 for p in priors)
    assert all(p.bboxes.device.type == 'cpu' for p in priors)


def test_selective_search_grayscale_and_photo():
    gen = _build('SelectiveSearchPriorGenerator', max_priors=20, seed=0)
    photo = _bgr_photo()
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    priors = gen([photo, gray, gray[..., None]])
    _check_priors(priors, [(512, 512)] * 3, 20)
    assert [len(p) for p in priors] == [20] * 3
    # [H, W] and [H, W, 1] are the same grayscale image.
    assert torch.equal(priors[1].bboxes, priors[2].bboxes)
    # Boxes span the photo, not the 128 x 128 image they were found on.
    assert priors[0].bboxes[:, 2:].max() > 300


def test_selective_search_finds_planted_rectangle():
    img = np.zeros((97, 131, 3), dtype=np.uint8)
    img[20:60, 30:90] = (40, 200, 250)
    gen = _build('SelectiveSearchPriorGenerator', seed=0)
    boxes = gen([img])[0].bboxes
    target = torch.tensor([30., 20., 90., 60.])
    err = (boxes - target).abs().amax(1).min()
    # One pixel of the 128 x 128 image spans ~1 pixel here.
    assert err <= 1.5


def test_selective_search_seed_and_modes():
    photo = _bgr_photo()
    gen = _build('SelectiveSearchPriorGenerator', seed=3)
    first, second = gen([photo])[0], gen([photo])[0]
    assert torch.equal(first.bboxes, second.bboxes)
    small = np.ascontiguousarray(photo[::8, ::8])  # 64 x 64
    for kwargs in (dict(mode='quality'), dict(resize=None), dict(resize=37)):
        priors = _build('SelectiveSearchPriorGenerator', **kwargs)([small])
        _check_priors(priors, [(64, 64)], 30)
        assert len(priors[0]) == 30
    with pytest.raises(ValueError, match='mode'):
        _build('SelectiveSearchPriorGenerator', mode='slow')


def test_selective_search_missing_contrib(monkeypatch):
    monkeypatch.delattr(cv2, 'ximgproc')
    with pytest.raises(ImportError, match='opencv-contrib-python-headless'):
        _build('SelectiveSearchPriorGenerator')


def test_image_input_checks():
    gen = _build('SelectiveSearchPriorGenerator')
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(TypeError):
        gen(img)
    with pytest.raises(TypeError):
        gen([img.astype(np.float32)])
    with pytest.raises(ValueError):
        gen([np.zeros((8, 8, 4), dtype=np.uint8)])
    with pytest.raises(ValueError):
        gen([img], [{}, {}])


# ---------------------------------------------------------- random crops


def test_random_crops_valid_and_min_size():
    sizes = ODD_SIZES + [(512, 512)]
    gen = _build('RandomCropPriorGenerator', num_crops=50, min_size=8)
    images = [np.zeros((h, w), dtype=np.uint8) for h, w in sizes[:-1]]
    images.append(_bgr_photo())
    priors = gen.generate(images)
    _check_priors(priors, [(w, h) for h, w in sizes], 50)
    for res, (h, w) in zip(priors, sizes):
        assert len(res) == 50
        assert (res.scores == 1).all()
        boxes = res.bboxes
        assert torch.equal(boxes, boxes.round())  # whole pixels
        assert (boxes[:, 2] - boxes[:, 0] >= min(8, w)).all()
        assert (boxes[:, 3] - boxes[:, 1] >= min(8, h)).all()
    # The full range is drawn: tiny and full-image sides both occur.
    big = gen([images[-1]] * 20)
    widths = torch.cat([r.bboxes[:, 2] - r.bboxes[:, 0] for r in big])
    assert widths.min() < 40 and widths.max() > 470


def test_random_crops_seeded_reproducible():
    images = [np.zeros((97, 131, 3), dtype=np.uint8)] * 2
    a = _build('RandomCropPriorGenerator', seed=7)
    b = _build('RandomCropPriorGenerator', seed=7)
    first_a, first_b = a(images), b(images)
    for ra, rb in zip(first_a, first_b):
        assert torch.equal(ra.bboxes, rb.bboxes)
    # Two images of one call and two calls differ.
    assert not torch.equal(first_a[0].bboxes, first_a[1].bboxes)
    assert not torch.equal(first_a[0].bboxes, a(images)[0].bboxes)
    other = _build('RandomCropPriorGenerator', seed=8)(images)
    assert not torch.equal(first_a[0].bboxes, other[0].bboxes)
    with pytest.raises(ValueError, match='min_size'):
        _build('RandomCropPriorGenerator', min_size=0)


def test_random_crops_rederive_stream_after_fork():
    images = [np.zeros((97, 131, 3), dtype=np.uint8)]
    a = _build('RandomCropPriorGenerator', seed=7)
    b = _build('RandomCropPriorGenerator', seed=7)
    a(images)
    # As in two forked dataloader workers: both copies would continue the
    # parent's stream; each re-derives one from (seed, rank, worker).
    a._pid = b._pid = -1
    child_a, child_b = a(images)[0], b(images)[0]
    assert torch.equal(child_a.bboxes, child_b.bboxes)  # same worker id
    parent = _build('RandomCropPriorGenerator', seed=7)
    parent(images)
    assert not torch.equal(child_a.bboxes, parent(images)[0].bboxes)


# ------------------------------------------------------- eigen regions


def test_eigen_planted_block_in_original_pixels():
    # Grid 10 x 8 on a 80 x 96 padded input: stride (w, h) = (12, 8).
    # The image is 60 x 70 after resize (valid: 8 rows, ceil(70/12) = 6
    # columns), resized by (w, h) = (0.5, 0.75) from 80 x 140.
    block = (3, 2, 6, 5)  # cells: columns 3-5, rows 2-4
    feats = _planted(10, 8, [block], fill=(8, 6))[None]
    meta = _meta((60, 70), (80, 96), scale_factor=(0.5, 0.75))
    assert meta['ori_shape'] == (80, 140)
    gen = _build('EigenRegionPriorGenerator')
    out = gen.generate_with_maps(feats, [meta])
    assert isinstance(out, EigenRegionPriors)
    assert out.stride == (12.0, 8.0)
    # Cells -> (36, 16, 72, 40) -> clip x2 to 70 -> / scale.
    expected = torch.tensor([[36 / 0.5, 16 / 0.75, 70 / 0.5, 40 / 0.75]])
    torch.testing.assert_close(out.priors[0].bboxes, expected)
    assert out.priors[0].scores.tolist() == [1.0]
    assert out.eigen_maps[0].shape == out.fg_masks[0].shape == (8, 6)
    mask = torch.zeros(8, 6, dtype=torch.bool)
    mask[2:5, 3:6] = True
    assert torch.equal(out.fg_masks[0], mask)
    assert out.eigen_maps[0].dtype == torch.float32
    # generate() gives the same priors.
    again = gen.generate(feats, [meta])[0]
    assert torch.equal(again.bboxes, out.priors[0].bboxes)
    # The clip is at img_shape (70 px), not only at ori_shape.
    loose = dict(meta, ori_shape=(200, 200))
    torch.testing.assert_close(gen(feats, [loose])[0].bboxes, expected)
    # The box in input pixels / stride lies on the mask's grid.
    cells = torch.tensor([[36, 16, 70, 40.]]) / torch.tensor(out.stride * 2)
    torch.testing.assert_close(cells, torch.tensor([[3, 2, 70 / 12, 5.]]))
    assert instance_keep(cells, out.fg_masks[0]).tolist() == [True]


def test_eigen_batch_with_padding_equals_per_image():
    # Stride 8 on a 128 x 160 padded input: 16 x 20 = 320 cells (the
    # iterative solver); each image alone is smaller.
    shapes = [(128, 160), (97, 131), (60, 150)]
    blocks = [[(2, 3, 6, 7), (12, 10, 18, 14)], [(4, 1, 9, 4)],
              [(0, 0, 3, 2), (10, 3, 14, 8)]]
    feats, metas, singles = [], [], []
    for i, ((h, w), bl) in enumerate(zip(shapes, blocks)):
        rows, cols = -(-h // 8), -(-w // 8)
        f = _planted(16, 20, bl, seed=i, fill=(rows, cols))
        scale = (0.8, 0.6) if i else (1.0, 1.0)
        feats.append(f)
        metas.append(_meta((h, w), (128, 160), scale_factor=scale))
        singles.append((f[None, :, :rows, :cols],
                        _meta((h, w), (rows * 8, cols * 8),
                              scale_factor=scale)))
    gen = _build('EigenRegionPriorGenerator')
    batch = gen.generate_with_maps(torch.stack(feats), metas)
    for i, (f, meta) in enumerate(singles):
        one = gen.generate_with_maps(f, [meta])
        assert len(batch.priors[i]) == len(blocks[i])
        torch.testing.assert_close(batch.priors[i].bboxes,
                                   one.priors[0].bboxes)
        assert torch.equal(batch.fg_masks[i], one.fg_masks[0])
        scale = one.eigen_maps[0].abs().max()
        torch.testing.assert_close(
            batch.eigen_maps[i], one.eigen_maps[0], atol=1e-3 * scale, rtol=0)


def test_eigen_stride_picks_level():
    pad = (64, 96)
    block = (1, 1, 3, 2)
    levels = [
        torch.ones(2, 8, 8, 12),  # stride 8: uniform, no priors
        torch.stack([_planted(4, 6, [block], seed=s) for s in (0, 1)]),
        torch.ones(2, 8, 2, 3),  # stride 32
    ]
    metas = [_meta(pad, pad)] * 2
    by_stride = _build('EigenRegionPriorGenerator', stride=16)
    by_level = _build('EigenRegionPriorGenerator', level=1)
    out = by_stride.generate_with_maps(levels, metas)
    assert out.stride == (16.0, 16.0)
    for res, ref in zip(out.priors, by_level(levels, metas)):
        assert res.bboxes.tolist() == [[16, 16, 48, 32]]
        assert torch.equal(res.bboxes, ref.bboxes)
    last = _build('EigenRegionPriorGenerator')(levels, metas)
    assert [len(r) for r in last] == [0, 0]
    with pytest.raises(ValueError, match='available strides'):
        _build('EigenRegionPriorGenerator', stride=12)(levels, metas)
    with pytest.raises(ValueError, match='not both'):
        _build('EigenRegionPriorGenerator', stride=16, level=1)
    with pytest.raises(IndexError):
        _build('EigenRegionPriorGenerator', level=3)(levels, metas)
    # ResNet sizes of a 100 x 130 input (ceil): stride 16 -> 7 x 9,
    # stride 32 -> 4 x 5; the level's stride is then 130 / 5, 100 / 4.
    levels = [torch.randn(1, 8, 7, 9), torch.randn(1, 8, 4, 5)]
    metas = [_meta((100, 130), (100, 130))]
    gen = _build('EigenRegionPriorGenerator', stride=32)
    out = gen.generate_with_maps(levels, metas)
    assert out.stride == (26.0, 25.0)
    assert out.eigen_maps[0].shape == (4, 5)


def test_eigen_centre_on_one_signed_features():
    # Non-negative features (as after a ReLU): every cosine > tau.
    block = (2, 3, 5, 6)
    gen = torch.Generator().manual_seed(0)
    feats = 1 + 0.01 * torch.rand(1, 8, 9, 11, generator=gen)
    feats[0, 1, 3:6, 2:5] += 2
    meta = [_meta((72, 88), (72, 88))]
    plain = _build('EigenRegionPriorGenerator')(feats, meta)[0]
    assert plain.bboxes.shape == (0, 4)
    centred = _build('EigenRegionPriorGenerator', centre=True)(feats, meta)[0]
    assert centred.bboxes.tolist() == [[x * 8 for x in block]]


def test_eigen_max_priors_order_and_min_cells():
    blocks = [(0, 0, 1, 1), (3, 0, 5, 1), (7, 0, 9, 2), (0, 4, 3, 6),
              (5, 5, 8, 8), (11, 11, 12, 12)]
    feats = _planted(16, 16, blocks)[None]
    meta = [_meta((16, 16), (16, 16))]  # stride 1: boxes in cells
    all_ = _build('EigenRegionPriorGenerator', max_priors=None)(feats, meta)
    by_area = sorted(blocks, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    assert len(all_[0]) == 6
    # Areas 1, 2, 4, 6, 9, 1: the two 1-cell blocks keep raster order.
    assert all_[0].bboxes.tolist() == [list(map(float, b)) for b in by_area]
    capped = _build('EigenRegionPriorGenerator', max_priors=3)(feats, meta)
    assert capped[0].bboxes.tolist() == all_[0].bboxes[:3].tolist()
    _check_order(capped[0].bboxes, capped[0].scores)
    big = _build('EigenRegionPriorGenerator', max_priors=None, min_cells=2)
    kept = big(feats, meta)[0].bboxes.tolist()
    assert kept == [list(map(float, b)) for b in by_area[:4]]


def test_eigen_empty_and_bad_metas():
    gen = _build('EigenRegionPriorGenerator')
    feats = torch.ones(2, 8, 5, 7)  # one feature everywhere: no cut
    metas = [_meta((40, 56), (40, 56)), _meta((33, 20), (40, 56))]
    out = gen.generate_with_maps(feats, metas)
    for res in out.priors:
        assert res.bboxes.shape == (0, 4) and res.scores.shape == (0, )
        assert res.bboxes.dtype == res.scores.dtype == torch.float32
    assert [m.shape for m in out.fg_masks] == [(5, 7), (5, 3)]
    assert not any(m.any() for m in out.fg_masks)
    with pytest.raises(ValueError, match='flip'):
        gen(feats, [dict(m, flip=True) for m in metas])
    with pytest.raises(ValueError, match='batch_img_metas'):
        gen(feats, metas[:1])
    with pytest.raises(ValueError, match='batch_input_shape'):
        gen(feats, [metas[0], _meta((33, 20), (40, 64))])
    with pytest.raises(KeyError, match='scale_factor'):
        gen(feats, [_without(m, 'scale_factor') for m in metas])


def test_input_to_original_rescales_then_clips():
    """Against a per-coordinate loop: x / w_scale, y / h_scale, clipped to
    [0, ori_w] x [0, ori_h]."""
    from mmdet_joindet.models.task_modules.object_priors.eigen_region import \
        input_to_original
    rng = np.random.default_rng(0)
    boxes = torch.from_numpy(rng.uniform(-20, 300, (50, 4))).float()
    meta = dict(scale_factor=(1.6, 0.8), ori_shape=(120, 150))
    got = input_to_original(boxes, meta)
    for b, g in zip(boxes.tolist(), got.tolist()):
        want = [
            min(
                max(v / (1.6 if k % 2 == 0 else 0.8), 0),
                150 if k % 2 == 0 else 120) for k, v in enumerate(b)
        ]
        np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-4)
    assert input_to_original(boxes[:0], meta).shape == (0, 4)
    with pytest.raises(ValueError, match='scale_factor'):
        input_to_original(boxes, dict(meta, scale_factor=(0, 1)))
