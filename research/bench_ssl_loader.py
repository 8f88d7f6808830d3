# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The SSL configs' data loader with each collate function, side by side.

    PYTHONPATH=.:benchmarks python research/bench_ssl_loader.py \
        [--config configs/ssl/dense-swav_r18_1xgpu_proxy-unlabeled.py] \
        [--data-root data/proxy/unlabeled/] [--batch-size 256] [--workers 2]
        [--batches 8] [--rounds 3]

Builds the config's train dataloader (its dataset, ``TwoViews`` pipeline
and sampler) twice, with mmengine's ``pseudo_collate`` (a list of ``2B``
small tensors per batch crosses from the workers) and ``default_collate``
(one stacked ``[B, 2, 3, S, S]`` tensor, what the configs use), and times
``--batches`` batches of each after two of warm-up. The two alternate for
``--rounds`` rounds; the median ms per batch of each is printed with the
ratio. Needs the config's unlabeled images (``make_proxy_data.py``).
"""
import argparse
import statistics
import time

COLLATES = ('pseudo_collate', 'default_collate')


def ms_per_batch(cfg, collate, batch_size, workers, batches):
    from mmengine.runner import Runner
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(
        batch_size=batch_size,
        num_workers=workers,
        persistent_workers=False,
        collate_fn=dict(type=collate))
    loader = iter(Runner.build_dataloader(loader_cfg, seed=0))
    for _ in range(2):
        next(loader)
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return 1e3 * (time.perf_counter() - start) / batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--config',
        default='configs/ssl/dense-swav_r18_1xgpu_proxy-unlabeled.py')
    parser.add_argument(
        '--data-root', help="the unlabeled images (default: the config's)")
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--batches', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(args.config)
    if args.data_root:
        cfg.train_dataloader.dataset.data_root = args.data_root
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    times = {c: [] for c in COLLATES}
    for _ in range(args.rounds):
        for collate in COLLATES:
            times[collate].append(
                ms_per_batch(cfg, collate, args.batch_size, args.workers,
                             args.batches))
    med = {c: statistics.median(t) for c, t in times.items()}
    print(f'batch {args.batch_size}, {args.workers} workers, median of '
          f'{args.rounds} rounds of {args.batches} batches: pseudo_collate '
          f'{med["pseudo_collate"]:.0f} ms, default_collate '
          f'{med["default_collate"]:.0f} ms, ratio '
          f'{med["pseudo_collate"] / med["default_collate"]:.2f}')


if __name__ == '__main__':
    main()
