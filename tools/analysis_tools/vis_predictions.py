# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Predictions against ground truth on a config's test images, as a PNG.

    python tools/analysis_tools/vis_predictions.py CONFIG CHECKPOINT \\
        [--images 0 7 | --num 4] [--score-thr 0.3] --out preds.png
"""
import argparse

from mmdet_joindet.utils import add_figure_args, load_figure_config
from mmdet_joindet.visualization import prediction_figure, save_png


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a detector config with a test set')
    parser.add_argument('checkpoint')
    parser.add_argument('--score-thr', type=float, default=0.3)
    add_figure_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    figure = prediction_figure(
        load_figure_config(args), args.checkpoint, args.images
        or list(range(args.num)), args.score_thr, args.device)
    print(f'wrote {save_png(args.out, figure)}')


if __name__ == '__main__':
    main()
