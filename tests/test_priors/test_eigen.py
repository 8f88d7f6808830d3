# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""eigen_attention_map against TokenCut's dense generalized eigensolver."""
import numpy as np
import pytest
import scipy.linalg
import torch

from mmdet_joindet.priors import centre_features
from mmdet_joindet.priors import eigen as eigen_module
from mmdet_joindet.priors import eigen_attention_map, foreground_mask


def dense_reference(tokens: np.ndarray, tau: float = 0.2, eps: float = 1e-5):
    """TokenCut's ncut in float64: bipartition [N] and the raw x [N]."""
    f = tokens.astype(np.float64)
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    A = f @ f.T
    A = np.where(A > tau, 1.0, eps)
    D = np.diag(A.sum(1))
    _, vecs = scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2])
    x = vecs[:, 0]
    part = x > x.mean()
    if not part[np.argmax(np.abs(x))]:
        part, x = ~part, -x
    return part, x


def planted(rng, n, c=32, groups=2, noise=0.6):
    """Tokens [n, c] drawn around `groups` random centres."""
    centres = rng.normal(size=(groups, c))
    labels = rng.integers(0, groups, n)
    labels[:groups] = np.arange(groups)
    return centres[labels] + noise * rng.normal(size=(n, c))


def as_feats(tokens: np.ndarray, h: int, w: int) -> torch.Tensor:
    return torch.from_numpy(tokens.T.reshape(1, -1, h, w)).float()


@pytest.mark.parametrize('hw', [(5, 7), (10, 12), (17, 23), (30, 31)])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_planted_partition_matches_dense(hw, seed):
    # (17, 23) and (30, 31) exceed DENSE_MAX_TOKENS: the Lanczos path.
    rng = np.random.default_rng(seed)
    h, w = hw
    tokens = planted(rng, h * w, groups=2 + seed % 2)
    ref, _ = dense_reference(tokens)
    fg = foreground_mask(eigen_attention_map(as_feats(tokens, h, w)))
    assert torch.equal(fg.flatten(), torch.from_numpy(ref))


def test_graph_with_several_components():
    # Three mutually orthogonal clusters: the binary graph has three
    # components joined only by eps edges.
    rng = np.random.default_rng(3)
    c = 24
    centres = np.eye(3, c) * 5
    labels = rng.integers(0, 3, 20 * 20)
    tokens = centres[labels] + 0.3 * rng.normal(size=(400, c))
    ref, _ = dense_reference(tokens)
    fg = foreground_mask(eigen_attention_map(as_feats(tokens, 20, 20)))
    assert torch.equal(fg.flatten(), torch.from_numpy(ref))
    # The cut separates whole clusters.
    for k in range(3):
        assert len(set(ref[labels == k])) == 1


def test_dense_fallback_matches_lanczos():
    rng = np.random.default_rng(4)
    feats = as_feats(planted(rng, 400), 20, 20)
    fast = eigen_attention_map(feats)
    forced = eigen_attention_map(feats, max_steps=2, tol=0.0)
    assert torch.equal(foreground_mask(fast), foreground_mask(forced))


def test_real_image_features_match_dense(real_image_features):
    agree = []
    for feats in real_image_features:
        feats = centre_features(feats)
        fg = foreground_mask(eigen_attention_map(feats)).flatten().numpy()
        tokens = feats[0].flatten(1).T.numpy()
        ref, x = dense_reference(tokens)
        # Cells on the threshold itself may flip with float32 rounding.
        clear = np.abs(x - x.mean()) > 1e-3 * np.abs(x).max()
        assert np.array_equal(fg[clear], ref[clear])
        agree.append((fg == ref).mean())
    assert min(agree) >= 0.99


def test_batched_equals_per_image_and_padding_is_ignored():
    rng = np.random.default_rng(5)
    sizes = [(14, 15), (20, 18), (9, 25)]
    H, W = 22, 26
    feats = torch.full((3, 32, H, W), float('nan'))  # padding: garbage
    valid = torch.zeros(3, H, W, dtype=torch.bool)
    singles = []
    for i, (h, w) in enumerate(sizes):
        f = as_feats(planted(rng, h * w), h, w)
        feats[i, :, :h, :w] = f[0]
        valid[i, :h, :w] = True
        singles.append(eigen_attention_map(f)[0])
    batched = eigen_attention_map(feats, valid)
    fg = foreground_mask(batched, valid)
    for i, (h, w) in enumerate(sizes):
        torch.testing.assert_close(
            batched[i, :h, :w], singles[i], rtol=0, atol=1e-4)
        assert torch.equal(fg[i, :h, :w], foreground_mask(singles[i][None])[0])
        pad = ~valid[i]
        assert (batched[i][pad] < batched[i][valid[i]].mean()).all()
        assert not fg[i][pad].any()


def test_degenerate_images_have_no_foreground():
    rng = np.random.default_rng(6)
    one_signed = torch.from_numpy(rng.uniform(0, 1, (2, 16, 20, 20))).float()
    same = torch.ones(1, 16, 20, 20)
    one_cell = torch.randn(1, 16, 1, 1)
    for feats in (one_signed, same, one_cell):
        m = eigen_attention_map(feats)
        assert torch.isfinite(m).all()
        assert (m == 0).all()
        assert not foreground_mask(m).any()
    # Centring one-signed (ReLU-like) features restores a cut.
    assert foreground_mask(eigen_attention_map(
        centre_features(one_signed))).any()
    # An image whose only valid cell is one cell of a padded canvas.
    feats = torch.randn(1, 8, 4, 4)
    valid = torch.zeros(1, 4, 4, dtype=torch.bool)
    valid[0, 2, 1] = True
    m = eigen_attention_map(feats, valid)
    assert torch.isfinite(m).all() and not foreground_mask(m, valid).any()


def test_bad_input_is_refused():
    feats = torch.randn(1, 8, 5, 5)
    feats[0, 3, 2, 2] = float('nan')
    with pytest.raises(ValueError, match='non-finite features in image'):
        eigen_attention_map(feats)
    with pytest.raises(ValueError, match='eps must be > 0'):
        eigen_attention_map(torch.randn(1, 8, 5, 5), eps=0.0)
    with pytest.raises(ValueError, match=r'\[B, C, h, w\]'):
        eigen_attention_map(torch.randn(8, 5, 5))
    with pytest.raises(ValueError, match='valid must be a bool'):
        eigen_attention_map(torch.randn(1, 8, 5, 5), torch.ones(1, 5, 5))


def test_chunking_keeps_results(monkeypatch):
    rng = np.random.default_rng(7)
    feats = torch.cat([as_feats(planted(rng, 300), 15, 20) for _ in range(3)])
    whole = eigen_attention_map(feats)
    monkeypatch.setattr(eigen_module, 'MAX_AFFINITY_ELEMENTS', 300 * 300)
    chunked = eigen_attention_map(feats)
    torch.testing.assert_close(whole, chunked, rtol=0, atol=1e-5)


def test_nearly_complete_graph_breaks_lanczos_down_safely():
    """All cells alike but one pair: the Krylov space becomes invariant
    after a step or two (regression: the iteration divided by a zero beta).
    The Fiedler vector separates the pair."""
    rng = np.random.default_rng(8)
    n, c = 16 * 16, 8  # above DENSE_MAX_TOKENS: the Lanczos path
    tokens = np.zeros((n, c))
    tokens[:, 0] = 1
    tokens[2:] += 0.01 * rng.normal(size=(n - 2, c))
    tokens[0, 1], tokens[1, 1] = 1, -1  # cos(0, 1) = 0 < tau, both ~ rest
    m = eigen_attention_map(as_feats(tokens, 16, 16)).flatten()
    assert torch.isfinite(m).all()
    # x ~ e0 - e1: the pair carries the two largest magnitudes, one on each
    # side (the other cells hold rounding noise around the mean).
    assert set(m.abs().topk(2).indices.tolist()) == {0, 1}
    assert m[0] * m[1] < 0
    assert m.abs()[2:].max() < 1e-3 * m.abs()[:2].min()
    assert foreground_mask(m.view(1, 16, 16)).flatten()[:2].sum() == 1
    _, x = dense_reference(tokens)
    assert set(np.argsort(-np.abs(x))[:2]) == {0, 1}
