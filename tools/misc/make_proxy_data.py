# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Write the digits-on-photos proxy detection set (issue 6).

    python tools/misc/make_proxy_data.py [--out data/proxy] [--seed 0]
        [--size 128] [--num-unlabeled 2000] [--num-train 500]
        [--num-val 200] [--num-object-centric 0]
        [--blend {feather,hard,none}]
        [--backgrounds NAME ...]

See :mod:`mmdet_joindet.datasets.proxy.builder` for the layout and boxes.
"""
import argparse
from typing import List, Optional

from mmdet_joindet.datasets.proxy import build_proxy_dataset


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/proxy')
    parser.add_argument('--size', type=int, default=128, help='image side')
    parser.add_argument('--num-unlabeled', type=int, default=2000)
    parser.add_argument('--num-train', type=int, default=500)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument(
        '--num-object-centric',
        type=int,
        default=0,
        help='also write object_centric/: unlabeled images of one large '
        'digit near the centre (the part ImageNet plays for the paper\'s '
        'SwAV backbone)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--blend',
        choices=('feather', 'hard', 'none'),
        default='feather',
        help="'hard': binary masks in random colours (favours selective "
        "search); 'none': feather's boxes, nothing painted (what a method "
        'recalls by chance on the same backgrounds)')
    parser.add_argument(
        '--backgrounds',
        nargs='+',
        help='scikit-image pictures to crop backgrounds from (default: '
        'all photographs and textures; e.g. brick grass gravel, or '
        "'textures', for scenes whose only objects are the digits)")
    args = parser.parse_args(argv)
    result = build_proxy_dataset(
        args.out,
        size=args.size,
        num_unlabeled=args.num_unlabeled,
        num_train=args.num_train,
        num_val=args.num_val,
        num_object_centric=args.num_object_centric,
        seed=args.seed,
        blend=args.blend,
        backgrounds=('textures' if args.backgrounds == ['textures'] else
                     args.backgrounds),
        progress=True)
    counts = result['manifest']['counts']
    print(f'wrote {counts} to {args.out}')


if __name__ == '__main__':
    main()
