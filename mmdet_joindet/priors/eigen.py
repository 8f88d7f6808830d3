# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The eigen attention map ``M = K(F)`` of JoinDet (paper Sec. 2.1, eq. 1).

``K`` is TokenCut's normalized cut (Wang et al., CVPR 2022): the patch
features of one image form a graph whose edges are their thresholded cosine
similarities, and ``M`` is the graph's Fiedler vector (the generalized
eigenvector of ``(D - A) x = lambda D x`` with the second-smallest
eigenvalue), sign-corrected so that the cell with the largest magnitude lies
in the foreground.

TokenCut solves the generalized problem densely (``scipy.linalg.eigh``,
O(N^3)). Here the equivalent symmetric form is used: ``x = D^-1/2 z`` where
``z`` is the eigenvector of the second-largest eigenvalue of
``S = D^-1/2 A D^-1/2``. The largest eigenpair of ``S`` is known in closed
form (``1``, ``D^1/2 1``), so it is deflated exactly and ``z`` becomes the
*extreme* eigenvector of the rest, the case Lanczos iteration converges on
fastest. All images of a batch run the iteration together, as batched
matrix-vector products on the input's device; an image whose Ritz residual
does not converge falls back to a dense ``torch.linalg.eigh``.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# Matrices up to this size are solved densely: cheaper than iterating.
DENSE_MAX_TOKENS = 192
# Elements of the [B, N, N] affinity held at once (4 bytes each): 1 GiB.
MAX_AFFINITY_ELEMENTS = 2**28


def eigen_attention_map(feats: Tensor,
                        valid: Optional[Tensor] = None,
                        tau: float = 0.2,
                        eps: float = 1e-5,
                        *,
                        max_steps: int = 150,
                        tol: float = 1e-5) -> Tensor:
    """TokenCut's sign-corrected Fiedler vector of each image's patch graph.

    Steps (facts.md, "TokenCut"): L2-normalise each valid cell's feature;
    ``A_ij = 1`` where the cosine similarity exceeds ``tau``, else ``eps``;
    ``D = diag(sum_j A_ij)``; ``x`` = the eigenvector of the second-smallest
    eigenvalue of ``(D - A) x = lambda D x``; bipartition ``x > mean(x)``;
    when the cell of largest ``|x|`` (the seed) is not in the foreground the
    sign of ``x`` is flipped.

    Padded cells take no part in the graph: an image's map over its valid
    cells does not depend on how much padding surrounds it or on the other
    images of the batch.

    Degenerate images have a defined result with no foreground: all valid
    cells hold 0 when the image has fewer than two valid cells, or when every
    pair of valid cells is connected (a complete binary graph, e.g. ReLU
    features whose cosines all exceed ``tau``: every non-trivial eigenvalue
    is then equal and the Fiedler vector is arbitrary).

    Args:
        feats (Tensor): Patch features, float ``[B, C, h, w]``.
        valid (Tensor, optional): Bool ``[B, h, w]``, False on padding.
            None means every cell is valid.
        tau (float): Cosine-similarity threshold of an edge. Defaults to 0.2
            (TokenCut).
        eps (float): Weight of a non-edge, > 0 so that the graph is
            connected and the Fiedler vector defined. Defaults to 1e-5.
        max_steps (int): Lanczos steps before an image that has not
            converged falls back to the dense solver.
        tol (float): Convergence threshold on the residual
            ``||S z - theta z||`` of the unit Ritz vector ``z``.

    Returns:
        Tensor: Float32 ``[B, h, w]`` on ``feats``' device: the eigen
        attention map. Padded cells hold a value below the mean of the
        valid cells (so :func:`foreground_mask` never selects them).
    """
    if feats.dim() != 4:
        raise ValueError(f'feats must be [B, C, h, w], got {feats.shape}')
    B, C, h, w = feats.shape
    if valid is None:
        valid = feats.new_ones((B, h, w), dtype=torch.bool)
    if valid.shape != (B, h, w) or valid.dtype != torch.bool:
        raise ValueError(f'valid must be a bool tensor of shape {(B, h, w)},'
                         f' got {valid.dtype} {tuple(valid.shape)}')
    if not eps > 0:
        raise ValueError(f'eps must be > 0 (it keeps the graph connected), '
                         f'got {eps}')
    tokens = feats.detach().flatten(2).transpose(1, 2).float()  # [B, N, C]
    mask = valid.flatten(1)  # [B, N]
    bad = (~torch.isfinite(tokens).all(-1) & mask).any(-1)
    if bad.any():
        raise ValueError('eigen_attention_map: non-finite features in '
                         f'image(s) {bad.nonzero().flatten().tolist()}')
    tokens = tokens.masked_fill(~mask[..., None], 0.0)  # padding: any value
    N = h * w
    out = tokens.new_zeros(B, N)
    chunk = max(1, MAX_AFFINITY_ELEMENTS // max(N * N, 1))
    for start in range(0, B, chunk):
        sl = slice(start, start + chunk)
        out[sl] = _fiedler(tokens[sl], mask[sl], tau, eps, max_steps, tol)
    return out.view(B, h, w)


def binary_affinity(tokens: Tensor, mask: Tensor, tau: float,
                    eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    """TokenCut's binary graph ``A`` and its degrees, batched.

    ``S = D^-1/2 A D^-1/2`` is never formed: :func:`_matvec` scales the
    vectors instead, which saves two passes over the ``N x N`` matrix.

    Args:
        tokens (Tensor): Float ``[B, N, C]`` features.
        mask (Tensor): Bool ``[B, N]``, False on padding.

    Returns:
        tuple[Tensor]: ``A`` float ``[B, N, N]`` (1 on an edge, ``eps``
        elsewhere, rows and columns of padding included: they are masked
        by ``D^-1/2``), ``D^-1/2`` float ``[B, N]`` (0 on padding) and a
        bool ``[B]`` that is True where the valid cells form a complete
        binary graph.
    """
    unit = F.normalize(tokens, dim=-1)
    A = torch.bmm(unit, unit.transpose(1, 2)).gt_(tau).clamp_(min=eps)
    m = mask.to(A.dtype)
    d = (A @ m.unsqueeze(-1)).squeeze(-1)  # degrees over valid neighbours
    n = m.sum(-1, keepdim=True)
    # d_i = edges_i + eps * (n - edges_i): recover the integer edge count.
    edges = ((d - eps * n) / (1 - eps)).round()
    complete = ((edges == n) | ~mask).all(-1)
    inv_sqrt_d = torch.where(mask, d.clamp_min(eps).rsqrt(), 0.0)
    return A, inv_sqrt_d, complete


def _fiedler(tokens: Tensor, mask: Tensor, tau: float, eps: float,
             max_steps: int, tol: float) -> Tensor:
    """Sign-corrected Fiedler vectors ``[B, N]`` of a chunk of images."""
    A, inv_sqrt_d, complete = binary_affinity(tokens, mask, tau, eps)
    degenerate = (mask.sum(-1) < 2) | complete
    # Top eigenvector of S (eigenvalue 1), known exactly: D^1/2 1.
    u1 = F.normalize(torch.where(mask, inv_sqrt_d.reciprocal(), 0.0), dim=-1)
    z = torch.zeros_like(u1)
    todo = ~degenerate
    if not todo.any():
        pass  # every image degenerate: all zeros
    elif A.shape[-1] <= DENSE_MAX_TOKENS:
        z[todo] = _dense_second(A[todo], inv_sqrt_d[todo])
    else:
        # Start from the features themselves (not from cell positions), so
        # that padding leaves the iteration of an image unchanged.
        gen = torch.Generator(device='cpu').manual_seed(0)
        probe = torch.randn(tokens.shape[-1], generator=gen)
        unit = F.normalize(tokens[todo], dim=-1)
        start = unit @ probe.to(tokens.device) + 0.5 * unit.sum(-1)
        idx = todo.nonzero()[:, 0]
        # Indexing copies A: skip it in the usual case, nothing degenerate.
        A_todo = A if len(idx) == len(A) else A[idx]
        z[idx], converged = _lanczos_second(A_todo, inv_sqrt_d[idx], u1[idx],
                                            start * mask[idx], max_steps, tol)
        idx = idx[~converged]
        if len(idx):
            z[idx] = _dense_second(A[idx], inv_sqrt_d[idx])
    return _sign_correct(z * inv_sqrt_d, mask, degenerate)


def _matvec(A: Tensor, inv_sqrt_d: Tensor, q: Tensor) -> Tensor:
    """``(S + I) q`` with ``S = D^-1/2 A D^-1/2``, for ``q [B, N]``.

    Eigenvalues lie in (0, 2] on the valid cells; padding (where
    ``D^-1/2`` is 0) maps to 0.
    """
    Aq = (A @ (q * inv_sqrt_d).unsqueeze(-1)).squeeze(-1)
    return Aq * inv_sqrt_d + q * (inv_sqrt_d > 0)


def _orthogonalize(r: Tensor, basis: Tensor) -> Tensor:
    """Remove from ``r [B, N]`` its components along ``basis [B, k, N]``.

    Two passes of classical Gram-Schmidt (enough for float32 Lanczos).
    """
    for _ in range(2):
        r = r - ((basis @ r.unsqueeze(-1)) * basis).sum(1)
    return r


def _lanczos_second(A: Tensor, inv_sqrt_d: Tensor, u1: Tensor, start: Tensor,
                    max_steps: int, tol: float) -> Tuple[Tensor, Tensor]:
    """Top eigenvector of ``S + I`` restricted to ``u1``'s complement.

    Lanczos with full reorthogonalisation against the Krylov basis and the
    deflated ``u1``. Every few steps the Ritz pair of the tridiagonal
    ``T`` is checked with the classic residual bound
    ``||(S + I) z - theta z|| = beta_k |y_k|``; the iteration stops once
    every image is below ``tol`` (or its Krylov space is exhausted, which
    makes the Ritz pair exact).

    Returns:
        tuple[Tensor]: unit ``z [B, N]`` and bool ``converged [B]``.
    """
    B, N = inv_sqrt_d.shape
    m = int(min(max_steps, N))
    Q = A.new_zeros(B, m + 1, N)
    Q[:, 0] = F.normalize(_orthogonalize(start, u1[:, None]), dim=-1)
    Q[:, m] = u1  # the deflated direction, kept out of every step
    T = A.new_zeros(B, m + 1, m + 1)
    for k in range(m):
        r = _matvec(A, inv_sqrt_d, Q[:, k])
        T[:, k, k] = (Q[:, k] * r).sum(-1)
        r = _orthogonalize(r, torch.cat([Q[:, :k + 1], Q[:, m:]], 1))
        beta = r.norm(dim=-1)
        # An exhausted Krylov space (beta ~ 0) stops that image.
        beta = beta * (beta > 1e-6 * T[:, k, k].abs().clamp_min(1e-12))
        if k + 1 < m:
            Q[:, k + 1] = r / beta.clamp_min(1e-30)[:, None]
            T[:, k, k + 1] = T[:, k + 1, k] = beta
        if (k + 1) % 5 and k + 1 < m:
            continue
        theta, Y = torch.linalg.eigh(T[:, :k + 1, :k + 1])
        converged = beta * Y[:, k, -1].abs() < tol
        if converged.all():
            break
    z = (Y[:, :, -1:].transpose(1, 2) @ Q[:, :k + 1])[:, 0]
    return F.normalize(z, dim=-1), converged


def _dense_second(A: Tensor, inv_sqrt_d: Tensor) -> Tensor:
    """Second-largest eigenvector ``[B, N]`` of ``S + I`` (dense eigh).

    On padding ``S + I`` is 0, below every valid eigenvalue (all > 0), so
    index -2 of the ascending spectrum is ``1 + lambda_2`` of the valid
    graph for any amount of padding.
    """
    M = A * inv_sqrt_d[:, :, None] * inv_sqrt_d[:, None, :]
    M = M + torch.diag_embed((inv_sqrt_d > 0).to(A.dtype))
    return torch.linalg.eigh(M)[1][..., -2]


def _sign_correct(x: Tensor, mask: Tensor, degenerate: Tensor) -> Tensor:
    """TokenCut's seed rule; padding set below the valid mean.

    Args:
        x (Tensor): ``[B, N]`` Fiedler vectors (any sign).
        mask (Tensor): Bool ``[B, N]``.
        degenerate (Tensor): Bool ``[B]``: images whose map is all 0.
    """
    x = torch.where(mask & ~degenerate[:, None], x, 0.0)
    n = mask.sum(-1).clamp_min(1)
    mean = x.sum(-1) / n
    seed = torch.where(mask, x.abs(), -1.0).argmax(-1)
    seed_val = x.gather(1, seed[:, None])[:, 0]
    x = torch.where((seed_val > mean)[:, None], x, -x)
    low = torch.where(mask, x, float('inf')).amin(-1).clamp_max(0.0) - 1.0
    return torch.where(mask, x, low[:, None])


def centre_features(feats: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Subtract each image's mean feature over its valid cells.

    Features after a ReLU (backbone stages C3-C5, used for the initial
    priors ``R0``) are all >= 0, so nearly every cosine similarity exceeds
    ``tau`` and TokenCut's graph is complete (no cut). Centring the tokens
    restores a meaningful cut (facts.md, "Eigen attention on ReLU
    features"); transformer-encoder outputs are not one-signed and are used
    as they are.

    Args:
        feats (Tensor): Float ``[B, C, h, w]``.
        valid (Tensor, optional): Bool ``[B, h, w]``, False on padding.

    Returns:
        Tensor: ``[B, C, h, w]``, padding set to 0.
    """
    if valid is None:
        return feats - feats.mean((2, 3), keepdim=True)
    m = valid[:, None].to(feats.dtype)
    mean = (feats * m).sum((2, 3), keepdim=True) / m.sum(
        (2, 3), keepdim=True).clamp_min(1)
    return (feats - mean) * m
