# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The paper's Figure 6: eigen map and priors of every round, per image.

    python tools/analysis_tools/vis_priors.py CONFIG \\
        --prior-root WORK_DIR/priors [--checkpoint WORK_DIR/epoch_N.pth] \\
        [--ann-file labeled.json] [--images 0 7 42 | --num 4] \\
        --out priors.png

CONFIG is the JoinDet pretraining config; image indices are dataset (and
prior store) indices. Without ``--checkpoint`` the eigen-map column is
left out; with ``--ann-file`` a ground-truth column is added.
"""
import argparse

from mmdet_joindet.utils import add_figure_args, load_figure_config
from mmdet_joindet.visualization import prior_figure, save_png


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='JoinDet pretraining config')
    parser.add_argument('--prior-root', required=True, help='prior store')
    parser.add_argument('--checkpoint', help='for the eigen map column')
    parser.add_argument('--ann-file', help='COCO json: ground truth column')
    parser.add_argument('--rounds', type=int, nargs='+', help='default all')
    add_figure_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    figure = prior_figure(
        load_figure_config(args), args.prior_root, args.images
        or list(range(args.num)), args.checkpoint, args.ann_file, args.rounds,
        args.device)
    print(f'wrote {save_png(args.out, figure)}')


if __name__ == '__main__':
    main()
