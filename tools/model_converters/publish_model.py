# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Prepare a checkpoint for the model zoo (as mmdet's publish_model.py).

    python tools/model_converters/publish_model.py IN.pth OUT.pth \\
        [--save-keys meta state_dict]

writes ``OUT-<sha256[:8]>.pth`` with only ``meta`` and ``state_dict``
(the optimizer, schedulers, message hub and prior-hook state removed);
for a pretrained JoinDet and for its converted Deformable DETR alike.
"""
import argparse

from mmdet_joindet.utils.publish import publish_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('in_file', help='input checkpoint')
    parser.add_argument('out_file', help='output name (the hash is added)')
    parser.add_argument(
        '--save-keys',
        nargs='+',
        default=['meta', 'state_dict'],
        help='top-level keys kept (default: meta state_dict)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        out = publish_checkpoint(args.in_file, args.out_file, args.save_keys)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f'publish_model.py: error: {e}')
    removed = ', '.join(out['removed']) or 'nothing'
    print(f'removed {removed}; published {out["path"]} '
          f'(sha256 {out["sha256"]})')


if __name__ == '__main__':
    main()
