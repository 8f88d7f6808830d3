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
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# Matrices up to this size are solved densely: cheaper than iterating.
DENSE_MAX_TOKENS = 192
# Elements of the [B, N, N] edge matrices held at once (1 byte each on the
# CPU, 4 on CUDA).
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
    feats = feats.detach().float()
    # Step 1: L2-normalised tokens, 0 on padding (which may hold anything).
    norms = feats.norm(dim=1)  # [B, h, w]; non-finite iff a feature is
    bad = (~torch.isfinite(norms) & valid).flatten(1).any(-1)
    if bad.any():
        raise ValueError('eigen_attention_map: non-finite features in '
                         f'image(s) {bad.nonzero().flatten().tolist()}')
    unit = torch.where(valid[:, None], feats / norms.clamp_min(1e-12)[:, None],
                       0.0)
    unit = unit.flatten(2).transpose(1, 2)  # [B, N, C]
    mask = valid.flatten(1)  # [B, N]
    N = h * w
    out = unit.new_zeros(B, N)
    chunk = max(1, MAX_AFFINITY_ELEMENTS // max(N * N, 1))
    for start in range(0, B, chunk):
        sl = slice(start, start + chunk)
        out[sl] = _fiedler(unit[sl], mask[sl], tau, eps, max_steps, tol)
    return out.view(B, h, w)


class EdgeMatrix:
    """A batch of 0/1 edge matrices ``E [B, N, N]`` and products with them.

    On the CPU, ``E`` is held as int8 and multiplied with ``torch._int_mm``
    (int8 x int8 -> int32, exact): the vector is split into three balanced
    base-256 digits of a 22-bit fixed-point copy, so the product is as
    accurate as a float32 one while reading a quarter of the bytes (the
    iteration is memory-bound) and holding a quarter of the memory.
    Elsewhere (CUDA), ``E`` is float32 and ``bmm`` is used.
    """

    def __init__(self, edges: Tensor) -> None:
        """``edges``: bool ``[B, N, N]``."""
        self.int8 = edges.device.type == 'cpu' and hasattr(torch, '_int_mm')
        self.data = edges.view(torch.int8) if self.int8 else edges.float()

    def __len__(self) -> int:
        return len(self.data)

    def select(self, idx: Tensor) -> 'EdgeMatrix':
        """The matrices of some images (no copy when all are selected)."""
        if idx.dtype == torch.bool and bool(idx.all()):
            return self
        out = EdgeMatrix.__new__(EdgeMatrix)
        out.int8, out.data = self.int8, self.data[idx]
        return out

    def dense(self) -> Tensor:
        """``E`` as float32 ``[B, N, N]``."""
        return self.data.float()

    def matvec(self, y: Tensor) -> Tensor:
        """``E y`` for float ``y [B, N]`` -> float32 ``[B, N]``."""
        if not self.int8:
            return (self.data @ y.unsqueeze(-1)).squeeze(-1)
        scale = y.abs().amax(-1, keepdim=True).clamp_min(1e-30) / 2**22
        v = torch.round(y / scale).to(torch.int32)  # |v| <= 2^22
        digits = []
        for _ in range(3):  # v = d0 + 256 d1 + 65536 d2, |d| <= 128
            d = torch.remainder(v + 128, 256) - 128
            digits.append(d)
            v = torch.div(v - d, 256, rounding_mode='floor')
        D = torch.stack(digits, -1).to(torch.int8)  # [B, N, 3]
        prod = torch.stack([torch._int_mm(e, d)
                            for e, d in zip(self.data, D)]).double()
        total = prod[..., 0] + 256 * prod[..., 1] + 65536 * prod[..., 2]
        return (total * scale).float()


def binary_affinity(unit: Tensor, mask: Tensor,
                    tau: float) -> Tuple[EdgeMatrix, Tensor, Tensor]:
    """TokenCut's binary graph, batched: ``A = eps + (1 - eps) E``.

    Only the 0/1 edge matrix ``E`` is stored; ``eps`` enters the
    matrix-vector products as a rank-one term (:func:`_matvec`), and
    ``S = D^-1/2 A D^-1/2`` is never formed either: the vectors are scaled
    instead. The float32 cosine matrix exists for one image at a time.

    Args:
        unit (Tensor): Float ``[B, N, C]`` L2-normalised features, 0 on
            padding.
        mask (Tensor): Bool ``[B, N]``, False on padding.

    Returns:
        tuple: ``E`` (:class:`EdgeMatrix`; 1 where the cosine similarity
        exceeds ``tau``; rows and columns of padding are masked later by
        ``D^-1/2 = 0``), the number of valid neighbours joined by an edge
        ``[B, N]`` and the number of valid cells ``[B, 1]``.
    """
    B, N, _ = unit.shape
    E = torch.empty(B, N, N, dtype=torch.bool, device=unit.device)
    for u, e in zip(unit, E):
        torch.gt(u @ u.T, tau, out=e)
    E = EdgeMatrix(E)
    m = mask.to(unit.dtype)
    edges = E.matvec(m).round_()  # exact small integers
    return E, edges, m.sum(-1, keepdim=True)


def _fiedler(unit: Tensor, mask: Tensor, tau: float, eps: float,
             max_steps: int, tol: float) -> Tensor:
    """Sign-corrected Fiedler vectors ``[B, N]`` of a chunk of images.

    Steps 2-4 of TokenCut on unit tokens ``[B, N, C]`` (0 on padding).
    """
    N = unit.shape[1]
    E, edges, n = binary_affinity(unit, mask, tau)
    # D = diag(edges + eps * (n - edges)); a complete graph has no cut.
    degrees = edges * (1 - eps) + eps * n
    inv_sqrt_d = torch.where(mask, degrees.clamp_min(eps).rsqrt(), 0.0)
    complete = ((edges == n) | ~mask).all(-1)
    degenerate = (mask.sum(-1) < 2) | complete
    graph = _Graph(E, inv_sqrt_d, eps)
    # Top eigenvector of S (eigenvalue 1), known exactly: D^1/2 1.
    u1 = F.normalize(torch.where(mask, inv_sqrt_d.reciprocal(), 0.0), dim=-1)
    z = torch.zeros_like(u1)
    todo = ~degenerate
    if not todo.any():
        pass  # every image degenerate: all zeros
    elif N <= DENSE_MAX_TOKENS:
        z[todo] = _dense_second(graph.select(todo))
    else:
        # Start from the features themselves (not from cell positions), so
        # that padding leaves the iteration of an image unchanged.
        gen = torch.Generator(device='cpu').manual_seed(0)
        probe = torch.randn(unit.shape[-1], generator=gen).to(unit.device)
        start = unit[todo] @ probe + 0.5 * unit[todo].sum(-1)
        idx = todo.nonzero()[:, 0]
        z[idx], converged = _lanczos_second(
            graph.select(todo), u1[idx], start * mask[idx], max_steps, tol)
        idx = idx[~converged]
        if len(idx):
            z[idx] = _dense_second(graph.select(idx))
    return _sign_correct(z * inv_sqrt_d, mask, degenerate)


class _Graph(NamedTuple):
    """A batch of TokenCut graphs: edges ``E``, ``D^-1/2 [B, N]`` (0 on
    padding) and the non-edge weight ``eps``."""
    E: EdgeMatrix
    inv_sqrt_d: Tensor
    eps: float

    def select(self, idx: Tensor) -> '_Graph':
        """The graphs of some images."""
        return _Graph(self.E.select(idx), self.inv_sqrt_d[idx], self.eps)


def _matvec(g: _Graph, q: Tensor) -> Tensor:
    """``(S + I) q`` with ``S = D^-1/2 A D^-1/2``, for ``q [B, N]``.

    ``A y = (1 - eps) E y + eps (sum y) 1`` (``y = 0`` on padding).
    Eigenvalues lie in (0, 2] on the valid cells; padding (where
    ``D^-1/2`` is 0) maps to 0.
    """
    y = q * g.inv_sqrt_d
    Ay = g.E.matvec(y).mul_(1 - g.eps)
    Ay += g.eps * y.sum(-1, keepdim=True)
    return Ay * g.inv_sqrt_d + q * (g.inv_sqrt_d > 0)


def _orthogonalize(r: Tensor, basis: Tensor) -> Tensor:
    """Remove from ``r [B, N]`` its components along ``basis [B, k, N]``.

    Two passes of classical Gram-Schmidt (enough for float32 Lanczos).
    """
    for _ in range(2):
        r = r - ((basis @ r.unsqueeze(-1)) * basis).sum(1)
    return r


def _lanczos_second(g: _Graph, u1: Tensor, start: Tensor, max_steps: int,
                    tol: float) -> Tuple[Tensor, Tensor]:
    """Top eigenvector of ``S + I`` restricted to ``u1``'s complement.

    Lanczos with full reorthogonalisation against the Krylov basis and the
    deflated ``u1``. From the fourth step on, the Ritz pair of the tridiagonal
    ``T`` is checked with the classic residual bound
    ``||(S + I) z - theta z|| = beta_k |y_k|``; the iteration stops once
    every image is below ``tol`` (or its Krylov space is exhausted, which
    makes the Ritz pair exact).

    Returns:
        tuple[Tensor]: unit ``z [B, N]`` and bool ``converged [B]``.
    """
    B, N = g.inv_sqrt_d.shape
    m = int(min(max_steps, N))
    Q = u1.new_zeros(B, m + 1, N)
    Q[:, 0] = F.normalize(_orthogonalize(start, u1[:, None]), dim=-1)
    Q[:, m] = u1  # the deflated direction, kept out of every step
    T = u1.new_zeros(B, m + 1, m + 1)
    broke = torch.zeros(B, dtype=torch.bool, device=u1.device)
    for k in range(m):
        r = _matvec(g, Q[:, k])
        T[:, k, k] = (Q[:, k] * r).sum(-1)
        r = _orthogonalize(r, torch.cat([Q[:, :k + 1], Q[:, m:]], 1))
        beta = r.norm(dim=-1)
        if k + 1 < m:
            # beta ~ 0: the Krylov space is invariant. Its Ritz pairs are
            # exact, but the start vector may have missed the Fiedler
            # direction (degenerate spectra): such images go to the dense
            # solver, and their iteration continues on zero vectors.
            alive = beta > 1e-6 * T[:, k, k].abs().clamp_min(1e-12)
            broke |= ~alive
            beta = beta * alive
            Q[:, k + 1] = torch.where(alive[:, None],
                                      r / beta.clamp_min(1e-30)[:, None], 0.0)
            T[:, k, k + 1] = T[:, k + 1, k] = beta
        if k < 3 and k + 1 < m:
            continue
        theta, Y = torch.linalg.eigh(T[:, :k + 1, :k + 1])
        converged = beta * Y[:, k, -1].abs() < tol
        if converged.all():
            break
    z = (Y[:, :, -1:].transpose(1, 2) @ Q[:, :k + 1])[:, 0]
    return F.normalize(z, dim=-1), converged & ~broke


def _dense_second(g: _Graph) -> Tensor:
    """Second-largest eigenvector ``[B, N]`` of ``S + I`` (dense eigh).

    On padding ``S + I`` is 0, below every valid eigenvalue (all > 0), so
    index -2 of the ascending spectrum is ``1 + lambda_2`` of the valid
    graph for any amount of padding.
    """
    d = g.inv_sqrt_d
    M = (g.E.dense() * (1 - g.eps) + g.eps) * d[:, :, None] * d[:, None, :]
    M = M + torch.diag_embed((d > 0).to(M.dtype))
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
