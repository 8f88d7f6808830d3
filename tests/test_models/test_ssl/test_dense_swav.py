# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""DenseSwAV: Sinkhorn against a float64 loop, location matching against
views of an image that holds its own coordinates, a loss that learns."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS, TRANSFORMS
from mmengine.optim import OptimWrapper

import mmdet_joindet  # noqa: F401
from mmdet_joindet.models.ssl import matching_grid, sinkhorn


def sinkhorn_reference(scores, eps, iters):
    """SwAV's Algorithm 1 as written, float64 numpy."""
    q = np.exp(scores.astype(np.float64) / eps).T  # [K, N]
    q /= q.sum()
    k, n = q.shape
    for _ in range(iters):
        q /= q.sum(axis=1, keepdims=True)
        q /= k
        q /= q.sum(axis=0, keepdims=True)
        q /= n
    return (q * n).T


def test_sinkhorn_matches_the_reference_and_equipartitions():
    rng = np.random.default_rng(0)
    scores = rng.uniform(-1, 1, (300, 12)).astype(np.float32)
    for iters in (1, 3):
        np.testing.assert_allclose(
            sinkhorn(torch.from_numpy(scores), 0.05, iters).numpy(),
            sinkhorn_reference(scores, 0.05, iters),
            rtol=1e-4,
            atol=1e-7)
    q = sinkhorn(torch.from_numpy(scores), 0.05, 200)
    torch.testing.assert_close(q.sum(1), torch.ones(300))
    # columns: each prototype gets N / K of the mass
    torch.testing.assert_close(
        q.sum(0), torch.full((12, ), 25.0), rtol=1e-3, atol=1e-3)
    # large scores (eps 0.05: exp(40 / 0.05) overflows) stay finite
    big = sinkhorn(torch.from_numpy(scores) * 40, 0.05, 3)
    assert torch.isfinite(big).all()
    torch.testing.assert_close(big.sum(1), torch.ones(300))


def coordinate_image(h=120, w=150):
    """uint8 BGR image whose pixel (y, x) holds x in channel 0, y in 1."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w)[None]
    img[..., 1] = np.arange(h)[:, None]
    return img


@pytest.mark.parametrize('shape', [(6, 6), (12, 12), (1, 1)])
def test_matching_grid_finds_the_same_image_location(shape):
    """Each view of the coordinate image says which image pixel it shows:
    a matched cell of view a and its position in view b must read the
    same image coordinates."""
    size = 48
    two = TRANSFORMS.build(
        dict(
            type='TwoViews',
            size=size,
            scale=(0.2, 0.8),
            jitter_prob=0,
            gray_prob=0,
            blur_probs=(0, 0),
            solarize_probs=(0, 0)))
    np.random.seed(0)
    outs = [two(dict(img=coordinate_image())) for _ in range(24)]
    views = torch.stack([o['inputs'] for o in outs]).float()  # [B,2,3,S,S]
    geom = torch.stack([o['data_samples'] for o in outs])
    assert set(geom[:, :, 4].flatten().tolist()) == {0.0, 1.0}
    h, w = shape
    # cell centres of view a, as grid_sample coordinates
    ys = (torch.arange(h) + 0.5) / h * 2 - 1
    xs = (torch.arange(w) + 0.5) / w * 2 - 1
    own = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1)
    matched = 0
    for a, b in ((0, 1), (1, 0)):
        grid, inside = matching_grid(geom[:, a], geom[:, b], size, shape)
        assert grid.shape == (24, h, w, 2) and inside.shape == (24, h, w)
        at_a = F.grid_sample(
            views[:, a, :2], own.expand(24, -1, -1, -1), align_corners=False)
        at_b = F.grid_sample(
            views[:, b, :2], grid, align_corners=False)  # [B, 2, h, w]
        # away from the views' borders (bilinear sampling clamps there)
        margin = (grid.abs() < 1 - 4 / size).all(-1)
        keep = inside & margin
        diff = (at_a - at_b).abs().amax(1)[keep]
        # one image pixel of rounding and interpolation
        assert diff.numel() and diff.max() < 1.5, diff.max()
        # and cells reported outside view b really are outside it
        seen = ((grid >= -1) & (grid < 1)).all(-1)
        assert torch.equal(seen, inside)
        matched += keep.sum().item()
    assert matched > 20


def tiny_dense_swav():
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='DenseSwAV',
            backbone=dict(
                type='ResNet',
                depth=18,
                base_channels=16,
                out_indices=(1, 2, 3),
                init_cfg=None),
            view_size=48,
            num_prototypes=16,
            hidden_channels=32,
            out_channels=16))


@pytest.fixture(scope='module')
def batch(photos):
    np.random.seed(0)
    two = TRANSFORMS.build(dict(type='TwoViews', size=48, scale=(0.2, 0.6)))
    outs = []
    for i in range(8):
        img = np.ascontiguousarray(photos[i % len(photos)][..., ::-1])
        outs.append(two(dict(img=img)))
    return dict(
        inputs=[o['inputs'] for o in outs],
        data_samples=[o['data_samples'] for o in outs])


def test_loss_decreases_on_a_fixed_batch(batch):
    model = tiny_dense_swav()
    model.train()
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=2e-3))
    logs = [model.train_step(batch, optim) for _ in range(15)]
    losses = [log['loss'].item() for log in logs]
    assert all(np.isfinite(losses))
    assert losses[0] > 0
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3]), losses
    assert 0 < logs[0]['matched'].item() < 1
    inputs = model.data_preprocessor(batch)['inputs']
    feats = model(inputs, mode='tensor')
    assert [f.shape for f in feats] == [(16, 32, 6, 6), (16, 64, 3, 3),
                                        (16, 128, 2, 2)]


def test_default_collate_batch_gives_the_same_loss(batch):
    """What mmengine's default_collate stacks (one [B, 2, 3, S, S] uint8
    tensor, one [B, 2, 5] geometry tensor) trains like the list that
    pseudo_collate passes."""
    from mmengine.dataset import default_collate
    samples = [
        dict(inputs=x, data_samples=g)
        for x, g in zip(batch['inputs'], batch['data_samples'])
    ]
    stacked = default_collate(samples)
    assert stacked['inputs'].shape == (8, 2, 3, 48, 48)
    assert stacked['data_samples'].shape == (8, 2, 5)
    model = tiny_dense_swav()
    model.train()
    losses = []
    for data in (batch, stacked):
        data = model.data_preprocessor(data, True)
        torch.manual_seed(1)
        losses.append(model.loss(data['inputs'], data['data_samples']))
    for key in ('loss', 'matched'):
        torch.testing.assert_close(losses[1][key], losses[0][key])


def test_bad_input_is_named(batch):
    model = tiny_dense_swav()
    inputs = model.data_preprocessor(batch)['inputs']
    with pytest.raises(ValueError, match='geometry'):
        model.loss(inputs, None)
    with pytest.raises(ValueError, match='view_size'):
        model.loss(inputs[..., :40, :40], batch['data_samples'])
    with pytest.raises(ValueError, match='two views'):
        model.loss(inputs[:, :1], batch['data_samples'])
    with pytest.raises(ValueError, match='ResNet'):
        MODELS.build(
            dict(
                type='DenseSwAV',
                backbone=dict(type='mmdet.CSPDarknet'),
                view_size=48))
