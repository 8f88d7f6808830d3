# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Prior-generation costs, measured side by side in one run.

    PYTHONPATH=. python benchmarks/bench_priors.py [--repeat 3] [--parts abc]
        [--device cpu|cuda]

(a) ``eigen_attention_map`` against TokenCut's dense generalized solver
    (``scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2])``, float64) at
    N = 850 and 3350 tokens, batch 8: time ratio and bipartition agreement,
    on planted-partition features and on (centred) ResNet-18 features of
    scikit-image's photographs (``--device cuda``: our solver on the GPU,
    the dense reference on the CPU as TokenCut runs it);
(b) per-image cost of eigen-attention region priors (map + boxes, given
    features) against DETReg's selective search (fast, 128 x 128) on those
    photographs;
(c) ``box_smooth`` at 30 + 30 and 300 + 300 boxes.

Prints one table per part; ratios are what to compare across machines.
"""
import argparse
import platform
import time

import numpy as np
import scipy.linalg
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


def dense_bipartition(tokens, tau=0.2, eps=1e-5):
    """TokenCut's reference ncut in float64 -> bool [N] foreground."""
    f = tokens.astype(np.float64)
    f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    A = np.where(f @ f.T > tau, 1.0, eps)
    D = np.diag(A.sum(1))
    _, vec = scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2])
    x = vec[:, 0]
    part = x > x.mean()
    return part if part[np.argmax(np.abs(x))] else ~part


def photos_bgr():
    from skimage import data
    out = []
    for name in PHOTOS:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, 2)
        out.append(np.ascontiguousarray(img[..., 2::-1]))
    return out


def resnet_features(images, grid):
    """Centred stride-16 ResNet-18 (random init) features on ``grid``."""
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    net = ResNet(depth=18, out_indices=(2, ), init_cfg=None)
    net.eval()  # mmdet's ResNet.train() returns None: no chaining
    h, w = grid
    feats = []
    with torch.no_grad():
        for img in images:
            x = torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1)
            x = torch.nn.functional.interpolate(
                x[None].float(), size=(16 * h, 16 * w), mode='bilinear')
            feats.append(net((x - 120.) / 60.)[0])
    return centre_features(torch.cat(feats))


def planted_features(batch, grid, seed=0):
    rng = np.random.default_rng(seed)
    h, w = grid
    centres = rng.normal(size=(batch, 2, 64))
    labels = rng.integers(0, 2, (batch, h * w))
    f = np.take_along_axis(centres, labels[..., None], 1)
    f = f + 0.7 * rng.normal(size=f.shape)
    return torch.from_numpy(f.transpose(0, 2, 1).reshape(batch, 64, h,
                                                         w)).float()


def part_a(repeat, skip_dense, images, device='cpu'):
    print(f'\n(a) eigen solver ({device}) vs dense generalized eigh (CPU, '
          'float64), batch 8')
    print(f'{"tokens":>6} {"input":>9} {"ours s":>8} {"dense s":>8} '
          f'{"ratio":>6} {"agree min":>9} {"agree mean":>10} {"exact":>5}')
    for n, grid in GRIDS.items():
        for name, feats in (('planted', planted_features(8, grid)),
                            ('photos', resnet_features(images, grid))):
            on_dev = feats.to(device)
            t_ours, m = timed(lambda: eigen_attention_map(on_dev), repeat,
                              device)
            fg = foreground_mask(m).flatten(1).cpu().numpy()
            if skip_dense:
                print(f'{n:>6} {name:>9} {t_ours:8.3f}')
                continue
            tokens = feats.flatten(2).transpose(1, 2).numpy()
            t0 = time.perf_counter()
            ref = np.stack([dense_bipartition(t) for t in tokens])
            t_dense = time.perf_counter() - t0
            agree = (fg == ref).mean(1)
            exact = int((agree == 1).sum())
            print(f'{n:>6} {name:>9} {t_ours:8.3f} {t_dense:8.2f} '
                  f'{t_dense / t_ours:6.1f} {agree.min():9.4f} '
                  f'{agree.mean():10.4f} {exact:>3}/8')


def part_b(repeat, images):
    from mmdet.registry import TASK_UTILS

    import mmdet_joindet  # noqa: F401
    print('\n(b) per-image prior generation: eigen region priors (from '
          'features) vs selective search (fast, 128x128)')
    ss = TASK_UTILS.build(dict(type='SelectiveSearchPriorGenerator'))
    eig = TASK_UTILS.build(dict(type='EigenRegionPriorGenerator'))
    t_ss, _ = timed(lambda: [ss.generate([im]) for im in images], repeat)
    print(f'{"grid":>8} {"eigen ms/img":>12} {"ss ms/img":>10} '
          f'{"ss/eigen":>8}')
    for n, grid in GRIDS.items():
        feats = resnet_features(images, grid)
        h, w = grid
        metas = [
            dict(
                img_shape=(32 * h, 32 * w),
                batch_input_shape=(32 * h, 32 * w),
                ori_shape=(32 * h, 32 * w),
                scale_factor=(1.0, 1.0))
        ] * len(images)
        t_eig, _ = timed(lambda: eig.generate(feats, metas), repeat)
        per_ss = 1e3 * t_ss / len(images)
        per_eig = 1e3 * t_eig / len(images)
        print(f'{h}x{w:<5} {per_eig:12.1f} {per_ss:10.1f} '
              f'{per_ss / per_eig:8.1f}')


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
        '--device',
        default='cpu',
        help="where part (a) runs our solver (parts b and c: the CPU)")
    args = parser.parse_args()
    gpu = (f', {torch.cuda.get_device_name(args.device)}'
           if torch.device(args.device).type == 'cuda' else '')
    print(f'{platform.processor() or platform.machine()}, '
          f'{torch.get_num_threads()} torch threads, torch {torch.__version__}'
          f'{gpu}')
    images = photos_bgr()
    if 'a' in args.parts:
        part_a(args.repeat, args.skip_dense, images, args.device)
    if 'b' in args.parts:
        part_b(args.repeat, images)
    if 'c' in args.parts:
        part_c(args.repeat)


if __name__ == '__main__':
    main()
