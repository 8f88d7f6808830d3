# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The prior store at ImageNet-1K scale, simulated.

    PYTHONPATH=. python benchmarks/bench_prior_store.py [--images 1281167]
        [--priors 30] [--lookups 100000] [--workers 2] [--root DIR]

Writes one round of ``images x priors`` random boxes (xyxy, original-image
pixels, float32) with :meth:`PriorStore.write_round_arrays`, commits it and
prints: bytes on disk per round, time to write it (validation and fsyncs
included), time per image lookup through :class:`PriorReader` (random
images, one process) and, for ``workers`` forked processes that each
serve ``lookups`` random images as dataloader workers do, their resident
memory split into memory-mapped file pages (shared by every worker, held
by the page cache) and private memory (what each worker really costs).

Goal (issue 18): under 1 GB per round, O(1) lookups under 50 us per image,
and no copy of the round per worker.
"""
import argparse
import multiprocessing as mp
import os
import os.path as osp
import platform
import shutil
import tempfile
import time

import numpy as np

from mmdet_joindet.datasets.prior_reader import PriorReader
from mmdet_joindet.datasets.prior_store import PriorStore


def simulated_round(images, priors, seed=0):
    """CSR arrays of ``images`` images with ``priors`` boxes each (a few
    with fewer, as real rounds have)."""
    rng = np.random.default_rng(seed)
    counts = np.full(images, priors, np.int64)
    counts[rng.random(images) < 0.05] //= 2
    offsets = np.zeros(images + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    n = int(offsets[-1])
    xy = rng.uniform(0, 400, (n, 2)).astype(np.float32)
    wh = rng.uniform(1, 100, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = rng.random(n, dtype=np.float32)
    return offsets, boxes, scores


def folder_bytes(path):
    return sum(
        osp.getsize(osp.join(path, f)) for f in os.listdir(path)
        if osp.isfile(osp.join(path, f)))


def memory_kib():
    """``(resident, file-backed resident, private)`` KiB of this process
    (Linux ``/proc``)."""
    fields = {}
    with open('/proc/self/status') as f:
        for line in f:
            key, _, value = line.partition(':')
            if key in ('VmRSS', 'RssFile', 'RssAnon'):
                fields[key] = int(value.split()[0])
    return fields['VmRSS'], fields['RssFile'], fields['RssAnon']


def worker(root, images, lookups, seed, queue):
    """A dataloader worker: its own reader, ``lookups`` random images."""
    before = memory_kib()
    reader = PriorReader(root)
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    for i in rng.integers(0, images, lookups).tolist():
        reader.get(i)
    per = (time.perf_counter() - t) / lookups
    after = memory_kib()
    queue.put((per, before, after))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=1281167)
    parser.add_argument('--priors', type=int, default=30)
    parser.add_argument('--lookups', type=int, default=100000)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument(
        '--root',
        help='where to write the store (default: a temp folder, '
        'removed at the end)')
    args = parser.parse_args()
    print(f'{platform.processor() or platform.machine()}, numpy '
          f'{np.__version__}; {args.images} images x {args.priors} priors')
    tmp = None if args.root else tempfile.mkdtemp(prefix='prior_store_')
    root = args.root or tmp
    try:
        offsets, boxes, scores = simulated_round(args.images, args.priors)
        store = PriorStore(root)
        t = time.perf_counter()
        path = store.write_round_arrays(
            0, offsets, boxes, scores, fingerprint='simulated')
        t_write = time.perf_counter() - t
        t = time.perf_counter()
        store.commit(0)
        t_commit = time.perf_counter() - t
        size = folder_bytes(path)
        del offsets, boxes, scores
        print(f'round on disk: {size / 2**20:.1f} MiB '
              f'({size / (args.images * args.priors):.1f} B per prior); '
              f'write {t_write:.2f} s, commit {t_commit * 1e3:.1f} ms')

        # For 2 s after a commit, readers re-read CURRENT on every lookup
        # (coarse file-system clocks, see PriorReader): measure after it.
        time.sleep(2.1)
        reader = PriorReader(root)
        rng = np.random.default_rng(1)
        idx = rng.integers(0, args.images, args.lookups).tolist()
        reader.get(0)
        t = time.perf_counter()
        for i in idx:
            reader.get(i)
        per = (time.perf_counter() - t) / len(idx)
        first = time.perf_counter()
        PriorReader(root).get(args.images - 1)
        first = time.perf_counter() - first
        print(f'lookup: {per * 1e6:.1f} us per image over {len(idx)} random '
              f'images (one process); a new reader\'s first lookup '
              f'{first * 1e3:.1f} ms (maps and validates the round)')

        ctx = mp.get_context('fork')
        queue = ctx.Queue()
        procs = [
            ctx.Process(
                target=worker,
                args=(root, args.images, args.lookups, 10 + k, queue))
            for k in range(args.workers)
        ]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        print(f'{"worker":>6} {"us/lookup":>9} {"RSS MiB":>8} '
              f'{"file-mapped MiB":>15} {"private MiB (growth)":>21}')
        for k, (per, before, after) in enumerate(results):
            rss, mapped, private = (v / 1024 for v in after)
            growth = (after[2] - before[2]) / 1024
            print(f'{k:>6} {per * 1e6:9.1f} {rss:8.1f} {mapped:15.1f} '
                  f'{private:12.1f} ({growth:+.1f})')
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
