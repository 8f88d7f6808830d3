# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Export the backbone of a runner checkpoint (e.g. a self-supervised run's
``iter_N.pth``) as the ``backbone.pth`` that ExportBackboneHook writes.

    python tools/model_converters/ssl_to_backbone.py IN.pth OUT.pth

For runs stopped before their end, or to read R0 along a run. See
:mod:`mmdet_joindet.utils.export_backbone`.
"""
import argparse

from mmdet_joindet.utils import export_backbone_checkpoint


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description='Export the backbone of a runner checkpoint for '
        "backbone.init_cfg=dict(type='Pretrained', checkpoint=OUT)")
    parser.add_argument('src', help='runner checkpoint (iter_N.pth)')
    parser.add_argument('dst', help='output path (not the input)')
    args = parser.parse_args(argv)
    try:
        summary = export_backbone_checkpoint(args.src, args.dst)
    except ValueError as e:
        parser.exit(1, f'{parser.prog}: error: {e}\n')
    print(f'{args.src} -> {args.dst}: {summary["keys"]} backbone keys '
          f'(iteration {summary["iter"]})')


if __name__ == '__main__':
    main()
