# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Low-data splits of a COCO json: labeled and unlabeled jsons per share
and seed, drawn without replacement.

    python tools/misc/split_low_data.py \\
        --ann-file data/coco/annotations/instances_train2017.json \\
        --out-dir data/coco/semi_anns --percent 1 2 5 10 --seed 1 2 3

writes ``<stem>.<seed>@<percent>.json`` (labeled) and
``<stem>.<seed>@<percent>-unlabeled.json`` (the rest) for every pair,
MMDetection's names for semi-supervised splits, and ``manifest.json``
(counts, seeds, mode, sha256 of the source and of every output). Each
labeled json holds exactly ``round(n * percent / 100)`` distinct images;
the draw is a pure function of the ids, share and seed, so every run and
every ``--nproc`` writes the same bytes. ``--detreg`` reproduces DETReg's
draw (``numpy.random.default_rng(42).choice(ids, round(n * p),
replace=False)`` with ``--seed 42``); the default ``nested`` draw keeps a
seed's smaller splits inside its larger ones. Unlike mmdet's
``tools/misc/split_coco.py``, nothing is drawn twice (that tool samples
with replacement, so its "10%" holds fewer distinct images than it says).
Every file is written to a temporary file and renamed.
"""
import argparse
import hashlib
import json
import os.path as osp
from multiprocessing import Pool

from mmdet_joindet.datasets.splits import draw_labeled_ids, split_coco_dict
from mmdet_joindet.utils.atomic import write_bytes_atomic


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ann-file', required=True, help='COCO json in')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument(
        '--percent',
        type=float,
        nargs='+',
        default=[1, 2, 5, 10],
        help='labeled shares in percent (default: 1 2 5 10)')
    parser.add_argument(
        '--seed',
        type=int,
        nargs='+',
        default=None,
        help='seeds (default: 1 2 3; 42 with --detreg)')
    parser.add_argument(
        '--detreg',
        action='store_true',
        help="DETReg's draw instead of the nested one")
    parser.add_argument(
        '--nproc', type=int, default=1, help='processes writing splits')
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = [42] if args.detreg else [1, 2, 3]
    for p in args.percent:
        if not 0 < p <= 100:
            parser.error(f'--percent must be in (0, 100], got {p:g}')
    if args.nproc < 1:
        parser.error(f'--nproc must be >= 1, got {args.nproc}')
    return args


def dump(obj) -> bytes:
    return json.dumps(obj, separators=(',', ':')).encode()


def split_name(stem: str, seed: int, percent: float) -> str:
    return f'{stem}.{seed}@{percent:g}'


def write_split(job):
    """Write one (seed, percent) pair; return its manifest entry."""
    ann_file, out_dir, seed, percent, mode = job
    with open(ann_file, 'rb') as f:
        coco = json.loads(f.read())
    ids = [im['id'] for im in coco['images']]
    labeled, unlabeled = split_coco_dict(
        coco, draw_labeled_ids(ids, percent / 100, seed, mode))
    name = split_name(osp.splitext(osp.basename(ann_file))[0], seed, percent)
    entry = dict(seed=seed, percent=percent, files={})
    for suffix, part in (('', labeled), ('-unlabeled', unlabeled)):
        data = dump(part)
        write_bytes_atomic(osp.join(out_dir, f'{name}{suffix}.json'), data)
        entry['files'][f'{name}{suffix}.json'] = dict(
            images=len(part['images']),
            annotations=len(part['annotations']),
            sha256=hashlib.sha256(data).hexdigest())
    return entry


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.ann_file):
        raise SystemExit(f'--ann-file {args.ann_file} does not exist: give '
                         'the COCO json to split')
    with open(args.ann_file, 'rb') as f:
        raw = f.read()
    try:
        coco = json.loads(raw)
        num = len(coco['images'])
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f'{args.ann_file} is not a COCO json with an '
                         f'"images" list ({e})')
    mode = 'detreg' if args.detreg else 'nested'
    # check every share before writing anything
    for p in args.percent:
        try:
            draw_labeled_ids([im['id'] for im in coco['images']], p / 100, 0,
                             mode)
        except ValueError as e:
            raise SystemExit(f'{args.ann_file}, --percent {p:g}: {e}')
    jobs = [(args.ann_file, args.out_dir, s, p, mode) for s in args.seed
            for p in args.percent]
    if args.nproc > 1:
        with Pool(min(args.nproc, len(jobs))) as pool:
            entries = pool.map(write_split, jobs)
    else:
        entries = [write_split(job) for job in jobs]
    manifest = dict(
        source=osp.basename(args.ann_file),
        source_sha256=hashlib.sha256(raw).hexdigest(),
        images=num,
        mode=mode,
        splits=entries)
    write_bytes_atomic(
        osp.join(args.out_dir, 'manifest.json'),
        json.dumps(manifest, indent=1).encode())
    for e in entries:
        counts = ', '.join(f'{k}: {v["images"]} images'
                           for k, v in e['files'].items())
        print(f'seed {e["seed"]}, {e["percent"]:g}%: {counts}')
    print(f'wrote {2 * len(entries)} jsons and manifest.json to '
          f'{args.out_dir}')


if __name__ == '__main__':
    main()
