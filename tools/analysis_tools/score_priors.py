# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Class-agnostic recall of a prior store's rounds against ground truth.

    python tools/analysis_tools/score_priors.py PRIOR_ROOT ANN_FILE \\
        [--rounds 0 1 2] [--max-dets 1 10 30 100] [--out scores.json]

``PRIOR_ROOT`` is a pretraining's store (``<work_dir>/priors``);
``ANN_FILE`` a COCO json with boxes for the same images (the labeled
version of the unlabeled json the pretraining read). Prints, per round,
AR@k (IoU 0.50:0.95) and AR50@k (IoU 0.5) for every k, with pycocotools
``useCats=0`` (one-to-one matching); ``--out`` writes the same rows as
JSON (atomically).
"""
import argparse
import json

from mmdet_joindet.evaluation.prior_scoring import (PRIOR_MAX_DETS,
                                                    score_prior_rounds)
from mmdet_joindet.utils.atomic import write_bytes_atomic


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('prior_root', help='the store, <work_dir>/priors')
    parser.add_argument('ann_file', help='COCO json with boxes')
    parser.add_argument(
        '--rounds', type=int, nargs='+', help='rounds (default: all)')
    parser.add_argument(
        '--max-dets',
        type=int,
        nargs='+',
        default=list(PRIOR_MAX_DETS),
        help='priors per image at which AR is read (default: 1 10 30 100)')
    parser.add_argument('--out', help='write the rows to this JSON file')
    return parser.parse_args(argv)


def format_table(rows, max_dets) -> str:
    """The rows as a markdown table, recalls in percent."""
    head = ['round', 'written by', 'priors/img'
            ] + [f'AR@{k}'
                 for k in max_dets] + [f'AR50@{k}' for k in max_dets]
    lines = [
        '| ' + ' | '.join(head) + ' |',
        '|' + ' --- |' * len(head),
    ]
    for row in rows:
        cells = [
            str(row['round']), row['mode'], f'{row["priors_per_image"]:.1f}'
        ]
        cells += [f'{100 * row[f"AR@{k}"]:.1f}' for k in max_dets]
        cells += [f'{100 * row[f"AR50@{k}"]:.1f}' for k in max_dets]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    rows = score_prior_rounds(args.prior_root, args.ann_file, args.rounds,
                              args.max_dets)
    print(format_table(rows, args.max_dets))
    if args.out:
        write_bytes_atomic(args.out, json.dumps(rows, indent=1).encode())
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
