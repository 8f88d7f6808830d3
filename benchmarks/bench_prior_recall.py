# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Class-agnostic recall of each round of priors on images with known boxes.

    PYTHONPATH=. python benchmarks/bench_prior_recall.py [--images 36]
        [--epochs 3]

Shapes drawn on crops of scikit-image's photographs (exact boxes), a tiny
JoinDet pretraining (``configs/joindet/joindet_r18-tiny_1xb2-3e_shapes.py``,
**random** ResNet-18 weights, priors updated after every epoch), then the
recall of R0 and of every later round at IoU 0.5 and averaged over IoU
0.5:0.95 (pycocotools, ``useCats=0``, one-to-one, every prior of an
image; ``box_recall`` of ``mmdet_joindet.evaluation``), next to DETReg's
selective search and UP-DETR's random crops on the same images. It
checks the mechanism; without a self-supervised backbone the numbers are
not expected to be good (R0 is only as good as the backbone under it,
paper Sec. 2.1).
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile

import cv2
import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs/joindet/joindet_r18-tiny_1xb2-3e_shapes.py')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=36)
    parser.add_argument('--epochs', type=int, default=3)
    args = parser.parse_args()
    from mmdet.registry import TASK_UTILS

    import mmdet_joindet  # noqa: F401
    from mmdet_joindet.datasets import PriorStore
    from mmdet_joindet.testing import make_shapes_coco
    with tempfile.TemporaryDirectory() as tmp:
        coco = make_shapes_coco(
            osp.join(tmp, 'data', 'shapes'),
            num_images=args.images,
            size=(128, 160),
            max_objects=4,
            backgrounds='photos')
        gts = [[] for _ in coco['images']]
        for a in coco['annotations']:
            x, y, w, h = a['bbox']
            gts[a['image_id'] - 1].append([x, y, x + w, y + h])
        gts = [np.array(g, np.float32).reshape(-1, 4) for g in gts]
        env = dict(os.environ, PYTHONPATH=REPO)
        subprocess.run([
            sys.executable,
            osp.join(REPO, 'tools/train.py'), CONFIG, '--work-dir', 'wd',
            '--cfg-options', f'train_cfg.max_epochs={args.epochs}',
            'randomness.seed=0'
        ],
                       cwd=tmp,
                       env=env,
                       check=True,
                       stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        store = PriorStore(osp.join(tmp, 'wd', 'priors'))
        rows = []
        # images are sorted by id = file order
        for r in store.rounds():
            rnd = store.load(r)
            preds = [rnd.get(i)[0] for i in range(len(rnd))]
            rows.append((f'round {r}' + (' (R0)' if r == 0 else ''), preds))
        images = [
            cv2.imread(
                osp.join(tmp, 'data', 'shapes', 'images', im['file_name']))
            for im in coco['images']
        ]
        ss = TASK_UTILS.build(
            dict(type='SelectiveSearchPriorGenerator', max_priors=10))
        crops = TASK_UTILS.build(
            dict(type='RandomCropPriorGenerator', num_crops=10, seed=0))
        rows.append(('selective search, 10',
                     [p.bboxes.numpy() for p in ss.generate(images)]))
        rows.append(('random crops, 10',
                     [p.bboxes.numpy() for p in crops.generate(images)]))
    from mmdet_joindet.evaluation import box_recall
    print(f'{args.images} images, {sum(len(g) for g in gts)} objects '
          '(shapes on photo crops, 128x160 px); tiny JoinDet with random '
          f'R-18 weights, {args.epochs} epochs, Box Smooth every epoch')
    print(f'{"priors":<22} {"per img":>7} {"R@0.5":>6} {"AR":>6}')
    for name, preds in rows:
        r = box_recall(gts, preds, max_dets=(100, ))  # every prior
        per = np.mean([len(p) for p in preds])
        print(f'{name:<22} {per:7.2f} {r["AR50@100"]:6.3f} '
              f'{r["AR@100"]:6.3f}')


if __name__ == '__main__':
    main()
