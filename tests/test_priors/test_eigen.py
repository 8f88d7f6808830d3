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
    # all-zero features: no edge, as in eigen_attention_map
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
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


def _cliques(sizes, c=None, rng=None, noise=0.0):
    """Tokens [sum(sizes), c]: group k is the unit vector e_k (plus noise),
    so the binary graph is ``len(sizes)`` exact cliques joined by eps."""
    c = c or len(sizes) + 1
    labels = np.repeat(np.arange(len(sizes)), sizes)
    tokens = np.eye(len(sizes), c)[labels]
    if noise:
        tokens = tokens + noise * rng.normal(size=tokens.shape)
    return tokens, labels


def _no_dense(monkeypatch):
    """Make the dense solver fail if it is called."""

    def refuse(*args):
        raise AssertionError('the dense solver was called')

    monkeypatch.setattr(eigen_module, '_dense_second', refuse)


def _breakdown_cases():
    rng = np.random.default_rng(11)
    two, _ = _cliques([200, 124])
    three, _ = _cliques([150, 110, 64])
    # Exact cliques in E from features that are not identical: fresh starts
    # keep finding new directions; eigenvalues near the top 1e-5 apart.
    noisy, _ = _cliques([130, 110, 84], c=32, rng=rng, noise=0.05)
    # One clique and 20 cells similar to nothing but themselves: the cut
    # separates the clique from the isolated cells (eigenvalue gap 2e-4).
    iso = np.zeros((324, 21))
    iso[:304, 0] = 1
    iso[304:, 1:] = np.eye(20)
    # Groups of exact copies: 16 noisy tokens per cluster, each repeated.
    base = planted(rng, 32, c=16, noise=0.5)
    copies = base[rng.integers(0, 32, 324)]
    copies[:32] = base
    # A rank-1 graph E = x x^T: one clique, the other cells all-zero
    # features (no edge at all, not even to themselves).
    rank1 = np.zeros((324, 4))
    rank1[:120, 0] = 2.0
    return dict(
        two_cliques=two,
        three_cliques=three,
        three_noisy_cliques=noisy,
        clique_and_isolated=iso,
        identical_copies=copies,
        rank1=rank1)


@pytest.mark.parametrize('case', sorted(_breakdown_cases()))
def test_breakdown_needs_no_dense_solver(case, monkeypatch):
    """Graphs whose Krylov spaces become invariant after a few steps give
    the dense reference's cut from the iteration alone."""
    tokens = _breakdown_cases()[case]
    _no_dense(monkeypatch)
    assert 18 * 18 > eigen_module.DENSE_MAX_TOKENS
    m = eigen_attention_map(as_feats(tokens, 18, 18))
    ref, _ = dense_reference(tokens)
    fg = foreground_mask(m).flatten().numpy()
    assert np.array_equal(fg, ref)


def test_restart_finds_the_direction_a_start_missed(monkeypatch):
    """A start vector that is itself an eigenvector (orthogonal to the
    Fiedler vector) spans an invariant space at once: the iteration must
    restart instead of returning that eigenvector."""
    _no_dense(monkeypatch)
    tokens = _breakdown_cases()['clique_and_isolated']
    first = torch.zeros(1, 324)
    first[0, 304], first[0, 305] = 1.0, -1.0  # two isolated cells: S v = c v
    original = eigen_module._FeatureStarts.next
    calls = []

    def next_start(self):
        calls.append(1)
        return first.clone() if len(calls) == 1 else original(self)

    monkeypatch.setattr(eigen_module._FeatureStarts, 'next', next_start)
    m = eigen_attention_map(as_feats(tokens, 18, 18))
    assert len(calls) > 1
    ref, _ = dense_reference(tokens)
    assert np.array_equal(foreground_mask(m).flatten().numpy(), ref)


def test_three_cliques_cut_is_the_dense_one_in_any_order(monkeypatch):
    """The cut of eps-joined cliques is decided by their sizes alone
    (eigenvalues 1e-5 apart): it must not depend on which cells come
    first."""
    _no_dense(monkeypatch)
    rng = np.random.default_rng(12)
    tokens, labels = _cliques([140, 100, 84], c=6)
    for _ in range(3):
        perm = rng.permutation(324)
        t = tokens[perm]
        ref, _ = dense_reference(t)
        fg = foreground_mask(eigen_attention_map(as_feats(t, 18,
                                                          18))).flatten()
        assert np.array_equal(fg.numpy(), ref)
        # whole cliques on each side
        for k in range(3):
            assert len(set(ref[labels[perm] == k])) == 1


def test_thick_restart_keeps_the_cut(monkeypatch):
    """With room for only 6 basis vectors the iteration restarts on its
    best Ritz vectors many times and still reaches the dense cut."""
    rng = np.random.default_rng(13)
    tokens = planted(rng, 20 * 20, noise=1.2)
    ref, x = dense_reference(tokens)
    steps = []
    matvec = eigen_module._matvec

    def counted(*args):
        steps.append(1)
        return matvec(*args)

    monkeypatch.setattr(eigen_module, '_matvec', counted)
    monkeypatch.setattr(eigen_module, 'MAX_BASIS', 6)
    monkeypatch.setattr(eigen_module, 'THICK_KEEP', 3)
    _no_dense(monkeypatch)
    fg = foreground_mask(eigen_attention_map(as_feats(tokens, 20, 20)))
    assert len(steps) > 6
    clear = np.abs(x - x.mean()) > 1e-3 * np.abs(x).max()
    assert np.array_equal(fg.flatten().numpy()[clear], ref[clear])


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
    n, c = 18 * 18, 8  # above DENSE_MAX_TOKENS: the Lanczos path
    tokens = np.zeros((n, c))
    tokens[:, 0] = 1
    tokens[2:] += 0.01 * rng.normal(size=(n - 2, c))
    tokens[0, 1], tokens[1, 1] = 1, -1  # cos(0, 1) = 0 < tau, both ~ rest
    m = eigen_attention_map(as_feats(tokens, 18, 18)).flatten()
    assert torch.isfinite(m).all()
    # x ~ e0 - e1: the pair carries the two largest magnitudes, one on each
    # side (the other cells hold rounding noise around the mean).
    assert set(m.abs().topk(2).indices.tolist()) == {0, 1}
    assert m[0] * m[1] < 0
    assert m.abs()[2:].max() < 1e-3 * m.abs()[:2].min()
    assert foreground_mask(m.view(1, 18, 18)).flatten()[:2].sum() == 1
    _, x = dense_reference(tokens)
    assert set(np.argsort(-np.abs(x))[:2]) == {0, 1}


def test_blocked_edges_equal_one_product(monkeypatch):
    """The upper-block-triangle product, thresholded and mirrored, is
    ``u u^T > tau`` (sizes not a multiple of the block, on both sides of
    the two-block switch)."""
    rng = np.random.default_rng(14)
    monkeypatch.setattr(eigen_module, 'GRAM_BLOCK', 16)
    for n in (20, 32, 33, 100):
        u = torch.nn.functional.normalize(
            torch.from_numpy(rng.normal(size=(n, 8))).float(), dim=1)
        out = torch.full((n, n), float('nan'))
        eigen_module._edges_into(u, 0.2, out)
        assert torch.equal(out, (u @ u.T > 0.2).float())


def test_reused_workspace_keeps_results():
    """The per-thread edge buffer kept between calls does not leak one
    call's graph into the next (larger, smaller, then the first again)."""
    rng = np.random.default_rng(15)
    small = as_feats(planted(rng, 15 * 16), 15, 16)
    large = torch.cat(
        [as_feats(planted(rng, 20 * 22), 20, 22) for _ in range(3)])
    first = eigen_attention_map(small)
    eigen_attention_map(large)
    assert torch.equal(eigen_attention_map(small), first)
    tokens = large[1].flatten(1).T.numpy()
    ref, _ = dense_reference(tokens)
    fg = foreground_mask(eigen_attention_map(large))[1].flatten().numpy()
    assert np.array_equal(fg, ref)
