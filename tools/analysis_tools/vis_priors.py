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

from mmengine.config import Config, DictAction

from mmdet_joindet.visualization import prior_figure, save_png


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='JoinDet pretraining config')
    parser.add_argument('--prior-root', required=True, help='prior store')
    parser.add_argument('--checkpoint', help='for the eigen map column')
    parser.add_argument('--ann-file', help='COCO json: ground truth column')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--images', type=int, nargs='+', help='indices')
    group.add_argument(
        '--num', type=int, default=4, help='the first N images (default 4)')
    parser.add_argument('--rounds', type=int, nargs='+', help='default all')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    indices = args.images or list(range(args.num))
    figure = prior_figure(cfg, args.prior_root, indices, args.checkpoint,
                          args.ann_file, args.rounds, args.device)
    print(f'wrote {save_png(args.out, figure)}')


if __name__ == '__main__':
    main()
