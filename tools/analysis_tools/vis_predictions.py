# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Predictions against ground truth on a config's test images, as a PNG.

    python tools/analysis_tools/vis_predictions.py CONFIG CHECKPOINT \\
        [--images 0 7 | --num 4] [--score-thr 0.3] --out preds.png
"""
import argparse

from mmengine.config import Config, DictAction

from mmdet_joindet.visualization import prediction_figure, save_png


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a detector config with a test set')
    parser.add_argument('checkpoint')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--images', type=int, nargs='+', help='indices')
    group.add_argument(
        '--num', type=int, default=4, help='the first N images (default 4)')
    parser.add_argument('--score-thr', type=float, default=0.3)
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
    figure = prediction_figure(cfg, args.checkpoint, indices, args.score_thr,
                               args.device)
    print(f'wrote {save_png(args.out, figure)}')


if __name__ == '__main__':
    main()
