# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Prior-generation costs, measured side by side in one run.

    PYTHONPATH=. python benchmarks/bench_priors.py [--repeat 3] [--parts abc]
        [--device cpu|cuda] [--skip-dense] [--backbone BACKBONE.pth]

(a) ``eigen_attention_map`` against the solvers a user reaches for: ARPACK
    (``scipy.sparse.linalg.eigsh(k=2, which='LA')`` on ``D^-1/2 A D^-1/2``),
    ``torch.lobpcg`` on the same matrix, and TokenCut's dense generalized
    solver (``scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2])``,
    float64, the reference cut), at N = 850 and 3350 tokens, batch 8,
    C = 256, graph construction included: on the synthetic families of
    :data:`FAMILIES`, on centred features of a random ResNet-18 on
    scikit-image's photographs, and (``--backbone``) of a self-supervised
    backbone on the proxy's validation images (``--device cuda``: our
    solver and lobpcg on the GPU, the others on the CPU);
(b) per-image cost of eigen-attention region priors (map + boxes, given
    features) against DETReg's selective search (fast, 128 x 128) on those
    photographs;
(c) ``box_smooth`` at 30 + 30 and 300 + 300 boxes.

Prints one table per part; ratios are what to compare across machines.
"""
import argparse
import os.path as osp
import platform
import time

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
import torch

from mmdet_joindet.priors import (box_smooth, centre_features,
                                  eigen_attention_map, foreground_mask)

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'camera', 'coins', 'cat',
          'immunohistochemistry')
GRIDS = {850: (25, 34), 3350: (50, 67)}


def timed(fn, repeat, device='cpu'):
    """Best wall time of ``repeat`` calls, and the last result (on CUDA
    after a warm-up call, each call synchronised)."""
    cuda = torch.device(device).type == 'cuda'
    if cuda:
        fn()
    best, out = float('inf'), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out


def bipartition(x):
    """TokenCut's rule on a Fiedler vector ``x [N]`` -> bool foreground."""
    part = x > x.mean()
    return part if part[np.argmax(np.abs(x))] else ~part


def unit_tokens(tokens, dtype=np.float64):
    f = np.ascontiguousarray(tokens, dtype)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def dense_bipartition(tokens, tau=0.2, eps=1e-5):
    """TokenCut's reference ncut in float64 -> bool [N] foreground."""
    f = unit_tokens(tokens)
    A = np.where(f @ f.T > tau, 1.0, eps)
    D = np.diag(A.sum(1))
    _, vec = scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2])
    return bipartition(vec[:, 0])


def arpack_bipartition(tokens, tau=0.2, eps=1e-5, dtype=np.float64):
    """ARPACK (``eigsh(k=2, which='LA')``, its defaults) on
    ``D^-1/2 A D^-1/2`` -> bool [N]. Cosines in float32 (the features'
    type); ``A`` in float64, as ``np.where(G > tau, 1.0, eps)`` makes it,
    or in float32 (``dtype``: the faster, tuned variant)."""
    f = unit_tokens(tokens, np.float32)
    A = np.where(f @ f.T > tau, dtype(1), dtype(eps))
    d = A.sum(1)**-0.5
    A *= d[:, None]
    A *= d[None]
    vals, vecs = scipy.sparse.linalg.eigsh(A, k=2, which='LA')
    return bipartition(vecs[:, np.argmin(vals)] * d)


def lobpcg_bipartition(tokens, tau=0.2, eps=1e-5, device='cpu'):
    """``torch.lobpcg(k=2, largest=True)`` on the same matrix, float32."""
    f = torch.nn.functional.normalize(
        torch.from_numpy(tokens).to(device), dim=1)
    A = torch.where(f @ f.T > tau, 1.0, eps)
    d = A.sum(1).rsqrt()
    A = A * d[:, None] * d[None]
    vals, vecs = torch.lobpcg(A, k=2, largest=True)
    x = (vecs[:, vals.argmin()] * d).cpu().numpy()
    return bipartition(x)


def photos_bgr():
    from skimage import data
    out = []
    for name in PHOTOS:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, 2)
        out.append(np.ascontiguousarray(img[..., 2::-1]))
    return out


def resnet_features(images, grid, checkpoint=None):
    """Centred stride-16 ResNet-18 features on ``grid``: random init, or a
    ``backbone.pth`` of ``tools/train_ssl_backbone.py``."""
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    net = ResNet(depth=18, out_indices=(2, ), init_cfg=None)
    if checkpoint:
        state = torch.load(checkpoint, map_location='cpu')['state_dict']
        net.load_state_dict(state)
    net.eval()  # mmdet's ResNet.train() returns None: no chaining
    h, w = grid
    feats = []
    with torch.no_grad():
        for img in images:
            x = torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1)
            x = torch.nn.functional.interpolate(
                x[None].float(), size=(16 * h, 16 * w), mode='bilinear')
            mean = x.new_tensor([123.675, 116.28, 103.53])[:, None, None]
            std = x.new_tensor([58.395, 57.12, 57.375])[:, None, None]
            feats.append(net((x - mean) / std)[0])
    return centre_features(torch.cat(feats))


def proxy_images(data_root, n=8):
    """The first ``n`` images (BGR) of a proxy split
    (``tools/misc/make_proxy_data.py``)."""
    import cv2
    from bench_prior_quality import load_set
    _, images, _ = load_set(data_root)
    return [
        cv2.imread(osp.join(data_root, 'images', im['file_name']))
        for im in images[:n]
    ]


# Synthetic patch features, C = 256: (noise norm, layout) per family.
FAMILIES = {
    # two near-orthogonal means, little noise: E is two exact cliques
    'clear': (0.3, 'one'),
    'more noise': (1.2, 'one'),
    # within-object cosines near tau: a small eigengap
    'noise dominates': (2.8, 'one'),
    # six small blobs of three kinds on a background: the top of the
    # spectrum is a cluster of four eigenvalues ~1e-5 apart
    'small blobs': (0.5, 'blobs'),
}


def family_features(name, batch, grid, c=256, seed=0):
    """``[batch, c, h, w]`` features of one of :data:`FAMILIES`: an
    elliptic object (or six small blobs) on a background, each region a
    random orthonormal mean plus Gaussian noise of the family's norm."""
    noise, layout = FAMILIES[name]
    rng = np.random.default_rng(seed)
    h, w = grid
    yy, xx = np.mgrid[:h, :w]
    out = []
    for _ in range(batch):
        means = np.linalg.qr(rng.normal(size=(c, 4)))[0].T
        labels = np.zeros((h, w), int)
        if layout == 'blobs':
            for j in range(6):
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                r = rng.uniform(0.06, 0.1) * min(h, w)
                labels[(yy - cy)**2 + (xx - cx)**2 < r * r] = 1 + j % 3
        else:
            cy, cx = rng.uniform(0.3, 0.7, 2) * (h, w)
            ry, rx = rng.uniform(0.2, 0.35, 2) * (h, w)
            labels[((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 < 1] = 1
        f = means[labels.ravel()] + noise / np.sqrt(c) * rng.normal(
            size=(h * w, c))
        out.append(f.T.reshape(c, h, w))
    return torch.from_numpy(np.stack(out)).float()


def timed_each(fn, tokens):
    """Wall time of ``fn`` over every image, and the bipartitions."""
    t = time.perf_counter()
    out = np.stack([fn(x) for x in tokens])
    return time.perf_counter() - t, out


def part_a(repeat,
           skip_dense,
           images,
           device='cpu',
           backbone=None,
           proxy=None,
           tokens=tuple(GRIDS)):
    print(f'\n(a) eigen solver ({device}, batched) vs ARPACK (float64 and '
          'float32 matrix), torch.lobpcg and the dense\n    generalized eigh '
          '(CPU, one image at a time); batch 8, C = 256, graph construction '
          'included;\n    ms per image; "same cut": images whose bipartition '
          'is the dense one (ARPACK float64 with --skip-dense)')
    print(f'{"tokens":>6} {"input":>15} {"ours":>6} {"ARPACK":>7} '
          f'{"ARPACK32":>8} {"lobpcg":>7} {"dense":>6} {"ARPACK/ours":>11} '
          f'{"ARPACK32/ours":>13} {"dense/ours":>10} '
          f'{"same cut: ours/ARPACK/ARPACK32/lobpcg":>37}')
    worst = {}
    for n in tokens:
        grid = GRIDS[n]
        inputs = [(name, lambda name=name: family_features(name, 8, grid))
                  for name in FAMILIES]
        inputs.append(
            ('photos, random', lambda: resnet_features(images, grid)))
        if backbone:
            inputs.append(
                ('proxy, SSL', lambda: resnet_features(proxy, grid, backbone)))
        for name, make in inputs:
            feats = make()
            on_dev = feats.to(device)
            t_ours, m = timed(lambda: eigen_attention_map(on_dev), repeat,
                              device)
            fg = foreground_mask(m).flatten(1).cpu().numpy()
            toks = feats.flatten(2).transpose(1, 2).numpy()
            t_arp, arp = timed_each(arpack_bipartition, toks)
            t_a32, a32 = timed_each(
                lambda x: arpack_bipartition(x, dtype=np.float32), toks)
            t_lob, lob = timed_each(
                lambda x: lobpcg_bipartition(x, device=device), toks)
            if skip_dense:
                t_dense, ref = float('nan'), arp
            else:
                t_dense, ref = timed_each(dense_bipartition, toks)
            same = [
                str(int((a == ref).all(1).sum())) for a in (fg, arp, a32, lob)
            ]
            ms = [
                1e3 * t / len(toks)
                for t in (t_ours, t_arp, t_a32, t_lob, t_dense)
            ]
            ratios = (t_arp / t_ours, t_a32 / t_ours)
            w = worst.setdefault(n, [float('inf')] * 2)
            worst[n] = [min(a, b) for a, b in zip(w, ratios)]
            print(
                f'{n:>6} {name:>15} {ms[0]:6.1f} {ms[1]:7.1f} {ms[2]:8.1f} '
                f'{ms[3]:7.1f} {ms[4]:6.0f} {ratios[0]:11.2f} '
                f'{ratios[1]:13.2f} {t_dense / t_ours:10.1f} '
                f'{"/".join(same):>33} of {len(toks)}',
                flush=True)
    for n in tokens:
        cost_floor(GRIDS[n], repeat)
    for n, (r64, r32) in worst.items():
        print(f'worst at {n} tokens: ARPACK/ours {r64:.2f}, '
              f'ARPACK32/ours {r32:.2f}')


def cost_floor(grid, repeat, name='clear'):
    """What both sides must pay: the cosine matrix. Prints, per image, our
    edge matrix (half the products, thresholded, mirrored) and the rest of
    our solve, against ARPACK's float32 cosine product and the rest of
    its solve."""
    from mmdet_joindet.priors import eigen
    feats = family_features(name, 8, grid)
    unit = torch.nn.functional.normalize(feats, dim=1).flatten(2)
    unit = unit.transpose(1, 2).contiguous()
    n = unit.shape[1]
    work = torch.empty(n, n)
    t_edges, _ = timed(lambda: [eigen._edges_into(u, 0.2, work) for u in unit],
                       repeat)
    t_ours, _ = timed(lambda: eigen_attention_map(feats), repeat)
    toks = [unit_tokens(u.numpy(), np.float32) for u in unit]
    t_gemm, _ = timed(lambda: [u @ u.T for u in toks], repeat)
    t_arp, _ = timed_each(lambda x: arpack_bipartition(x, dtype=np.float32),
                          feats.flatten(2).transpose(1, 2).numpy())
    ms = [1e3 * t / len(toks) for t in (t_edges, t_ours, t_gemm, t_arp)]
    print(f'   {n} tokens, {name}: ours {ms[1]:.1f} ms/img of which edge '
          f'matrix {ms[0]:.1f}; ARPACK32 {ms[3]:.1f} of which cosine '
          f'product {ms[2]:.1f} (solve: ours {ms[1] - ms[0]:.1f}, ARPACK32 '
          f'{ms[3] - ms[2]:.1f})')


def part_b(repeat, images, cuts=(1, 3)):
    from mmdet.registry import TASK_UTILS

    import mmdet_joindet  # noqa: F401
    print('\n(b) per-image prior generation: eigen region priors (from '
          'features; one cut, and several cuts as MaskCut) vs selective '
          'search (fast, 128x128)')
    ss = TASK_UTILS.build(dict(type='SelectiveSearchPriorGenerator'))
    eig = {
        n:
        TASK_UTILS.build(dict(type='EigenRegionPriorGenerator', num_cuts=n))
        for n in cuts
    }
    t_ss, _ = timed(lambda: [ss.generate([im]) for im in images], repeat)
    per_ss = 1e3 * t_ss / len(images)
    head = ''.join(f'{f"{n} cut(s) ms/img":>16} {"boxes/img":>9}'
                   for n in cuts)
    print(f'{"grid":>8}{head} {"ss ms/img":>10} {"ss/1 cut":>8} '
          f'{f"{cuts[-1]} cuts/1":>9}')
    for _, grid in GRIDS.items():
        feats = resnet_features(images, grid)
        h, w = grid
        metas = [
            dict(
                img_shape=(32 * h, 32 * w),
                batch_input_shape=(32 * h, 32 * w),
                ori_shape=(32 * h, 32 * w),
                scale_factor=(1.0, 1.0))
        ] * len(images)
        per, row = {}, ''
        for n, gen in eig.items():
            t, out = timed(lambda: gen.generate(feats, metas), repeat)
            per[n] = 1e3 * t / len(images)
            boxes = sum(len(p) for p in out) / len(images)
            row += f'{per[n]:16.1f} {boxes:9.1f}'
        print(f'{h}x{w:<5}{row} {per_ss:10.1f} {per_ss / per[cuts[0]]:8.1f}'
              f' {per[cuts[-1]] / per[cuts[0]]:9.2f}')


def part_c(repeat):
    print('\n(c) box_smooth (CPU)')
    rng = np.random.default_rng(0)
    for n in (30, 300):
        xy = rng.uniform(0, 600, (2, n, 2))
        wh = rng.uniform(10, 200, (2, n, 2))
        boxes = torch.from_numpy(np.concatenate([xy, xy + wh], 2)).float()
        jitter = boxes[0] + torch.from_numpy(rng.normal(0, 3, (n, 4))).float()
        jitter = torch.cat(
            [jitter[:, :2], jitter[:, 2:].maximum(jitter[:, :2] + 1)], 1)
        scores = torch.rand(2, n)
        for name, cur in (('random', boxes[1]), ('jittered', jitter)):
            t, out = timed(
                lambda: box_smooth(boxes[0], scores[0], cur, scores[1]),
                max(repeat, 5))
            print(f'{n:>4} + {n:<4} {name:>8}: {1e3 * t:7.2f} ms, '
                  f'{len(out[0])} clusters')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--skip-dense', action='store_true')
    parser.add_argument('--parts', default='abc')
    parser.add_argument(
        '--tokens',
        default='850,3350',
        help='part (a): comma-separated token counts (850, 3350)')
    parser.add_argument(
        '--device',
        default='cpu',
        help="where part (a) runs our solver (parts b and c: the CPU)")
    parser.add_argument(
        '--backbone',
        help='part (a) also on the features of this backbone.pth '
        '(tools/train_ssl_backbone.py) for images of --proxy')
    parser.add_argument(
        '--proxy',
        default='data/proxy/val',
        help='a proxy split (tools/misc/make_proxy_data.py) for --backbone')
    args = parser.parse_args()
    gpu = (f', {torch.cuda.get_device_name(args.device)}'
           if torch.device(args.device).type == 'cuda' else '')
    print(f'{platform.processor() or platform.machine()}, '
          f'{torch.get_num_threads()} torch threads, torch {torch.__version__}'
          f'{gpu}')
    images = photos_bgr()
    if 'a' in args.parts:
        proxy = proxy_images(args.proxy) if args.backbone else None
        part_a(args.repeat, args.skip_dense, images, args.device,
               args.backbone, proxy,
               tuple(int(n) for n in args.tokens.split(',')))
    if 'b' in args.parts:
        part_b(args.repeat, images)
    if 'c' in args.parts:
        part_c(args.repeat)


if __name__ == '__main__':
    main()
