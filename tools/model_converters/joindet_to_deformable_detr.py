# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Turn a JoinDet pretraining checkpoint into a Deformable DETR one.

    python tools/model_converters/joindet_to_deformable_detr.py IN.pth \
        OUT.pth [--keep-cls]

then finetune mmdet's stock ``DeformableDETR`` (any ``num_classes``, same
``with_box_refine``/``as_two_stage`` and model sizes as the pretraining)
with ``load_from = 'OUT.pth'``. The embedding branch (and the frozen
embedding extractor, if any) are dropped; so is the 1-logit foreground
classifier unless ``--keep-cls``, and mmdet initialises an N-class one. See
:mod:`mmdet_joindet.utils.convert`.
"""
import argparse

# Importing the package also allow-lists the globals of mmengine runner
# checkpoints for torch.load(weights_only=True).
from mmdet_joindet.utils import convert_checkpoint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Convert a JoinDet pretraining checkpoint for finetuning '
        "mmdet's DeformableDETR with load_from")
    parser.add_argument('src', help='JoinDet checkpoint (runner or bare)')
    parser.add_argument('dst', help='output path (not the input)')
    parser.add_argument(
        '--keep-cls',
        action='store_true',
        help='keep bbox_head.cls_branches (the 1-logit foreground '
        'classifier), e.g. to finetune a single-class detector')
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = convert_checkpoint(
            args.src, args.dst, keep_cls=args.keep_cls)
    except ValueError as e:
        parser.exit(1, f'{parser.prog}: error: {e}\n')
    dropped = ', '.join(f'{m} ({n})'
                        for m, n in summary['dropped_modules'].items())
    print(f'{args.src} -> {args.dst}: kept {summary["kept"]} keys, dropped '
          f'{len(summary["dropped"])}: {dropped or "none"}')


if __name__ == '__main__':
    main()
