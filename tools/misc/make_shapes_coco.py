# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Write the tiny shapes data set the smoke configs train on.

    python tools/misc/make_shapes_coco.py [--out data/shapes] [--num 16]
"""
import argparse

from mmdet_joindet.testing import make_shapes_coco


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/shapes')
    parser.add_argument('--num', type=int, default=16, help='images')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    coco = make_shapes_coco(args.out, num_images=args.num, seed=args.seed)
    print(f'wrote {len(coco["images"])} images and '
          f'{len(coco["annotations"])} boxes to {args.out}')


if __name__ == '__main__':
    main()
