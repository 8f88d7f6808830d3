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
fastest. All images of a batch run the iteration together on the input's
device (one float32 matrix-vector product per image and step: the products
are memory-bound); when a Krylov space becomes invariant (near-cliques,
the cleanest images) the iteration restarts from a fresh start vector
instead of giving up, and a long iteration is thick-restarted. Only tiny
graphs (``DENSE_MAX_TOKENS``), and an image that has not converged after
``max_steps`` products, use a dense ``torch.linalg.eigh``.
"""
import threading
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# Matrices up to this size are solved densely: at most as slow as the
# iteration's worst case there (noise-dominated graphs with isolated cells,
# benchmarks/bench_priors.py).
DENSE_MAX_TOKENS = 320
# Elements (float32) of the [B, N, N] edge matrices held at once.
MAX_AFFINITY_ELEMENTS = 2**24
# Lanczos (see _lanczos_second): a step whose residual norm is below this
# fraction of its Rayleigh quotient found an invariant Krylov space;
BREAKDOWN = 1e-6
# steps taken from a fresh start before an image may stop;
RESTART_MIN_STEPS = 3
# basis vectors held before a thick restart on the best THICK_KEEP Ritz
# vectors.
MAX_BASIS = 80
THICK_KEEP = 10
# Tokens per block of the cosine matrix (see _edges_into).
GRAM_BLOCK = 512
_WORKSPACE = threading.local()


def eigen_attention_map(feats: Tensor,
                        valid: Optional[Tensor] = None,
                        tau: float = 0.2,
                        eps: float = 1e-5,
                        *,
                        max_steps: int = 300,
                        tol: float = 1e-6) -> Tensor:
    """TokenCut's sign-corrected Fiedler vector of each image's patch graph.

    Steps (TokenCut's ``ncut``): L2-normalise each valid cell's feature;
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
    is then equal and the Fiedler vector is arbitrary). Where cells have
    identical features, the map is sought among vectors that do not tell
    them apart (their differences are eigenvectors of eigenvalue 1 of the
    normalized Laplacian, which only a degenerate graph makes the Fiedler
    vector); the map is deterministic for given features.

    Args:
        feats (Tensor): Patch features, float ``[B, C, h, w]``.
        valid (Tensor, optional): Bool ``[B, h, w]``, False on padding.
            None means every cell is valid.
        tau (float): Cosine-similarity threshold of an edge. Defaults to 0.2
            (TokenCut).
        eps (float): Weight of a non-edge, > 0 so that the graph is
            connected and the Fiedler vector defined. Defaults to 1e-5.
        max_steps (int): Lanczos steps (matrix-vector products) before an
            image that has not converged falls back to the dense solver.
        tol (float): Convergence threshold on the residual
            ``||S z - theta z||`` of the unit Ritz vector ``z``; 1e-6 (near
            float32's resolution of eigenvalues close to 1) separates the
            clusters of eigenvalues a few 1e-5 apart that eps-joined
            cliques produce.

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
    unit = unit.flatten(2).transpose(1, 2).contiguous()  # [B, N, C]
    mask = valid.flatten(1)  # [B, N]
    N = h * w
    out = unit.new_zeros(B, N)
    chunk = max(1, min(B, MAX_AFFINITY_ELEMENTS // max(N * N, 1)))
    work = _workspace(chunk * N * N, unit)  # one edge buffer, every chunk
    for start in range(0, B, chunk):
        sl = slice(start, start + chunk)
        out[sl] = _fiedler(unit[sl], mask[sl], tau, eps, max_steps, tol, work)
    return out.view(B, h, w)


def binary_affinity(
        unit: Tensor,
        mask: Tensor,
        tau: float,
        work: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """TokenCut's binary graph, batched: ``A = eps + (1 - eps) E``.

    Only the 0/1 edge matrix ``E`` is stored; ``eps`` enters the
    matrix-vector products as a rank-one term (:func:`_matvec`), and
    ``S = D^-1/2 A D^-1/2`` is never formed either: the vectors are scaled
    instead. Each image's cosine matrix is thresholded in place.

    Args:
        unit (Tensor): Float ``[B, N, C]`` L2-normalised features, 0 on
            padding.
        mask (Tensor): Bool ``[B, N]``, False on padding.
        tau (float): Cosine-similarity threshold of an edge.
        work (Tensor, optional): A float32 buffer of at least ``B N^2``
            elements to hold ``E`` (allocated when None).

    Returns:
        tuple[Tensor]: ``E`` float32 ``[B, N, N]`` (1 where the cosine
        similarity exceeds ``tau``, else 0; rows and columns of padding are
        masked later by ``D^-1/2 = 0``), the number of valid neighbours
        joined by an edge ``[B, N]`` and the number of valid cells
        ``[B, 1]``.
    """
    B, N, _ = unit.shape
    E = (unit.new_empty(B * N * N) if work is None else work)[:B * N * N]
    E = E.view(B, N, N)
    for u, e in zip(unit, E):
        _edges_into(u, tau, e)
    m = mask.to(unit.dtype)
    edges = _edge_matvec(E, m, mask.any(-1)).round_()  # exact integers
    return E, edges, m.sum(-1, keepdim=True)


def _edges_into(u: Tensor, tau: float, out: Tensor) -> Tensor:
    """``u u^T > tau`` as float32 0/1 into ``out [N, N]``, for contiguous
    float32 ``u [N, C]``.

    The cosine matrix is symmetric: beyond two blocks of ``GRAM_BLOCK``
    tokens only its upper block triangle is multiplied (``mm`` straight
    into ``out``), thresholded while in cache and mirrored tile by tile,
    about a third faster than one ``mm`` at 3350 tokens on the CPU.
    """
    N, b = len(u), GRAM_BLOCK
    if N <= 2 * b:
        return torch.mm(u, u.T, out=out).gt_(tau)
    for i in range(0, N, b):
        row = torch.mm(u[i:i + b], u[i:].T, out=out[i:i + b, i:]).gt_(tau)
        for j in range(b, N - i, b):
            out[i + j:i + j + b, i:i + b].copy_(row[:, j:j + b].T)
    return out


def _workspace(numel: int, like: Tensor) -> Tensor:
    """A float32 buffer of ``numel`` elements on ``like``'s device.

    On the CPU, the first touch of fresh memory (page faults) costs about
    as much as the cosine products, so one buffer of up to
    ``MAX_AFFINITY_ELEMENTS`` is kept per thread between calls (CUDA's
    caching allocator does the same there).
    """
    if like.device.type != 'cpu' or numel > MAX_AFFINITY_ELEMENTS:
        return like.new_empty(numel)
    buf = getattr(_WORKSPACE, 'buf', None)
    if buf is None or buf.numel() < numel:
        buf = _WORKSPACE.buf = like.new_empty(numel)
    return buf[:numel]


def _edge_matvec(E: Tensor, y: Tensor, active: Tensor) -> Tensor:
    """``E y`` for ``E [B, N, N]``, ``y [B, N]``; 0 where ``active [B]`` is
    False.

    One matrix-vector product per image on the CPU: the products are
    memory-bound, and BLAS's ``gemv`` reads ``E`` at memory speed where a
    batched ``bmm`` with one column does not.
    """
    if E.device.type != 'cpu':
        return (E @ (y * active[:, None]).unsqueeze(-1)).squeeze(-1)
    out = torch.zeros_like(y)
    for i in active.nonzero()[:, 0].tolist():
        torch.mv(E[i], y[i], out=out[i])
    return out


def _fiedler(unit: Tensor,
             mask: Tensor,
             tau: float,
             eps: float,
             max_steps: int,
             tol: float,
             work: Optional[Tensor] = None) -> Tensor:
    """Sign-corrected Fiedler vectors ``[B, N]`` of a chunk of images.

    Steps 2-4 of TokenCut on unit tokens ``[B, N, C]`` (0 on padding);
    ``work``: see :func:`binary_affinity`.
    """
    N = unit.shape[1]
    E, edges, n = binary_affinity(unit, mask, tau, work)
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
        z[todo], converged = _lanczos_second(
            graph.select(todo), u1[todo], _FeatureStarts(unit[todo]),
            max_steps, tol)
        late = todo.clone()
        late[todo] = ~converged
        if late.any():
            z[late] = _dense_second(graph.select(late))
    return _sign_correct(z * inv_sqrt_d, mask, degenerate)


class _Graph(NamedTuple):
    """A batch of TokenCut graphs: edges ``E [B, N, N]``, ``D^-1/2 [B, N]``
    (0 on padding) and the non-edge weight ``eps``."""
    E: Tensor
    inv_sqrt_d: Tensor
    eps: float

    def select(self, keep: Tensor) -> '_Graph':
        """The graphs where bool ``keep [B]`` is True (no copy when all
        are)."""
        if bool(keep.all()):
            return self
        return _Graph(self.E[keep], self.inv_sqrt_d[keep], self.eps)


class _FeatureStarts:
    """Start vectors of the iteration, derived from the features alone.

    The ``k``-th is ``unit @ g_k`` (0 on padding) with ``g_k`` a fixed
    pseudo-random direction in feature space, so an image's iteration does
    not depend on its padding or on the other images of the batch.
    """

    def __init__(self, unit: Tensor, block: int = 8) -> None:
        self.unit, self.block = unit, block
        self.gen = torch.Generator(device='cpu').manual_seed(0)
        self.ready: list = []

    def next(self) -> Tensor:
        """The next start vector of every image, ``[B, N]``."""
        if not self.ready:  # a block of directions in one product
            g = torch.randn(
                self.unit.shape[-1], self.block, generator=self.gen)
            self.ready = list((self.unit @ g.to(self.unit.device)).unbind(-1))
        return self.ready.pop(0)


def _matvec(g: _Graph, q: Tensor, active: Tensor) -> Tensor:
    """``(S + I) q`` with ``S = D^-1/2 A D^-1/2``, for ``q [B, N]``.

    ``A y = (1 - eps) E y + eps (sum y) 1`` (``y = 0`` on padding).
    Eigenvalues lie in (0, 2] on the valid cells; padding (where
    ``D^-1/2`` is 0) maps to 0. Images where ``active [B]`` is False get
    an unspecified result and cost nothing.
    """
    y = q * g.inv_sqrt_d
    Ay = _edge_matvec(g.E, y, active).mul_(1 - g.eps)
    Ay += g.eps * y.sum(-1, keepdim=True)
    return Ay * g.inv_sqrt_d + q * (g.inv_sqrt_d > 0)


def _orthogonalize(r: Tensor, basis: Tensor) -> Tuple[Tensor, Tensor]:
    """Remove from ``r [B, N]`` its components along the orthonormal (or
    zero) rows of ``basis [B, k, N]``.

    Two passes of classical Gram-Schmidt (enough for float32 Lanczos).

    Returns:
        tuple[Tensor]: the residual ``[B, N]`` and the coefficients
        ``basis @ r`` ``[B, k]`` removed.
    """
    coef = 0
    for _ in range(2):
        c = (basis @ r.unsqueeze(-1)).squeeze(-1)
        r = r - (c.unsqueeze(1) @ basis).squeeze(1)
        coef = coef + c
    return r, coef


def _lanczos_second(g: _Graph, u1: Tensor, starts: _FeatureStarts,
                    max_steps: int, tol: float) -> Tuple[Tensor, Tensor]:
    """Top eigenvector of ``S + I`` restricted to ``u1``'s complement.

    Lanczos iteration with full reorthogonalisation against the basis and
    the deflated ``u1``, batched over images (each image stops on its own).
    ``T = Q^T (S + I) Q`` is kept whole (the coefficients of the
    reorthogonalisation), so the Rayleigh-Ritz step stays exact when the
    basis is extended by vectors that are not the last step's residual:

    - **breakdown** (the Krylov space is invariant, e.g. graphs made of
      near-cliques): its Ritz pairs are exact, but the space may miss the
      Fiedler direction, so the iteration goes on from a fresh feature
      derived start vector orthogonal to the basis; an image whose fresh
      vector lies in the basis too has exhausted what its features reach
      and stops with the top Ritz pair found (for cells with identical
      features, the eigenvectors it cannot reach are the antisymmetric
      combinations, of eigenvalue ``1`` of ``S + I``);
    - **thick restart** once ``MAX_BASIS`` vectors are held: the best
      ``THICK_KEEP`` Ritz vectors and the last residual start a new basis.

    An image stops when the residual ``||(S + I) z - theta z||`` of its top
    Ritz vector ``z`` is below ``tol``, at least ``RESTART_MIN_STEPS``
    steps after its last fresh start.

    Args:
        g (_Graph): ``B`` graphs of ``N`` cells.
        u1 (Tensor): Unit top eigenvectors of ``S`` ``[B, N]`` (deflated).
        starts (_FeatureStarts): Source of start vectors.
        max_steps (int): Products with ``S + I`` per image at most.
        tol (float): Residual threshold.

    Returns:
        tuple[Tensor]: unit ``z [B, N]`` and bool ``converged [B]``.
    """
    B, N = u1.shape
    M = int(min(MAX_BASIS, N - 1))
    keep = min(THICK_KEEP, M // 2)
    Q = u1.new_zeros(B, M + 1, N)
    Q[:, M] = u1  # the deflated direction, kept out of every step
    T = u1.new_zeros(B, M, M)
    z = u1.new_zeros(B, N)
    done = torch.zeros(B, dtype=torch.bool, device=u1.device)
    converged = torch.zeros_like(done)
    since_start = torch.zeros(B, dtype=torch.long, device=u1.device)
    theta_broke = u1.new_full((B, ), -float('inf'))
    Q[:, 0] = _fresh_start(starts, Q[:, M:])[0]
    k = 0  # basis vectors Q[:, :k] hold their products in T
    for step in range(max_steps):
        r = _matvec(g, Q[:, k], ~done)
        r, coef = _orthogonalize(r, torch.cat([Q[:, :k + 1], Q[:, M:]], 1))
        T[:, :k + 1, k] = T[:, k, :k + 1] = coef[:, :k + 1]
        beta = r.norm(dim=-1)
        # A step whose residual vanished: restart from a fresh vector.
        broke = beta <= BREAKDOWN * coef[:, k].abs()
        k += 1
        since_start += 1
        ripe = (since_start >= RESTART_MIN_STEPS) & ~done
        nxt = r / beta.clamp_min(1e-30)[:, None]
        if not (ripe.any() or broke.any() or k == M or step == max_steps - 1):
            Q[:, k] = nxt
            continue  # no image can stop: the Ritz pairs can wait
        theta, Y = torch.linalg.eigh(T[:, :k, :k])
        y = Y[:, :, -1]
        res = beta * y[:, -1].abs()
        stop = (res < tol) & ripe & ~broke
        if broke.any():
            # Invariant again, and the fresh start since the last breakdown
            # did not raise the top Ritz value: stop; or nothing new to
            # start from.
            fresh, exhausted = _fresh_start(starts,
                                            torch.cat([Q[:, :k], Q[:, M:]], 1))
            same = theta[:, -1] - theta_broke <= tol
            stop |= broke & (exhausted | same) & ~done
            nxt = torch.where(broke[:, None], fresh, nxt)
            since_start = torch.where(broke, 0, since_start)
            theta_broke = torch.where(broke, theta[:, -1], theta_broke)
        if stop.any():
            z = torch.where(stop[:, None],
                            (y.unsqueeze(1) @ Q[:, :k]).squeeze(1), z)
            converged |= stop
            done |= stop
        if done.all():
            break
        if k == M:  # thick restart on the best Ritz vectors
            Q[:, :keep] = Y[:, :, -keep:].transpose(1, 2) @ Q[:, :k]
            T.zero_()
            T[:, range(keep), range(keep)] = theta[:, -keep:]
            k = keep
        Q[:, k] = nxt
    if not done.all():
        z = torch.where(done[:, None], z,
                        (y.unsqueeze(1) @ Q[:, :k]).squeeze(1))
    return F.normalize(z, dim=-1), converged


def _fresh_start(starts: _FeatureStarts,
                 basis: Tensor) -> Tuple[Tensor, Tensor]:
    """A unit start vector orthogonal to ``basis [B, k, N]``, and bool
    ``exhausted [B]`` where none of a few feature-derived tries leaves a
    component outside the basis (the vector is then 0)."""
    out = torch.zeros_like(basis[:, 0])
    found = torch.zeros(len(out), dtype=torch.bool, device=out.device)
    for _ in range(3):
        v = starts.next()
        norm = v.norm(dim=-1)
        r = _orthogonalize(v, basis)[0]
        rnorm = r.norm(dim=-1)
        ok = ~found & (rnorm > 1e-3 * norm)
        out = torch.where(ok[:, None], r / rnorm.clamp_min(1e-30)[:, None],
                          out)
        found |= ok
        if found.all():
            break
    return out, ~found


def _dense_second(g: _Graph) -> Tensor:
    """Second-largest eigenvector ``[B, N]`` of ``S + I`` (dense eigh).

    On padding ``S + I`` is 0, below every valid eigenvalue (all > 0), so
    index -2 of the ascending spectrum is ``1 + lambda_2`` of the valid
    graph for any amount of padding.
    """
    d = g.inv_sqrt_d
    M = (g.E * (1 - g.eps) + g.eps) * d[:, :, None] * d[:, None, :]
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
    restores a meaningful cut (tested in ``tests/test_priors/
    test_eigen.py``); transformer-encoder outputs are not one-signed and
    are used as they are.

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
