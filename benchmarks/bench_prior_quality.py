# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Class-agnostic quality and cost of object priors on labeled images.

    PYTHONPATH=. python benchmarks/bench_prior_quality.py \
        --data data/proxy/val [--backbone work_dirs/ssl/backbone.pth] \
        [--depth 18] [--sweep]

For every image of a COCO-format set with boxes: the eigen-map region
priors R0 (paper eq. 3) of a ResNet (the given self-supervised checkpoint,
and random weights), DETReg's selective search and UP-DETR's random crops;
each method's boxes ranked (region priors by area, selective search in
OpenCV's order, crops at random). Reported: AR@1/10/30 (COCO-averaged
IoU 0.5:0.95), recall at IoU 0.5 with 10 and 30 boxes, AP50 (pycocotools,
``useCats=0``, rank as score) and ms per image (for R0: the backbone's
forward pass included, as selective search starts from the image too).
``--sweep`` also varies the feature level (stride 8/16/32), centring and
tau for each backbone.
"""
import argparse
import contextlib
import io
import itertools
import json
import os.path as osp
import time

import cv2
import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps


def load_set(root):
    """``<root>/annotations.json`` (shapes) or ``<root>/<name>.json``
    (proxy splits), images under ``<root>/images``."""
    ann = osp.join(root, 'annotations.json')
    if not osp.exists(ann):
        ann = osp.join(root, osp.basename(osp.normpath(root)) + '.json')
    with open(ann) as f:
        coco = json.load(f)
    images = sorted(coco['images'], key=lambda im: im['id'])
    gts = {im['id']: [] for im in images}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        gts[a['image_id']].append([x, y, x + w, y + h])
    return coco, images, {
        k: np.array(v, np.float32).reshape(-1, 4)
        for k, v in gts.items()
    }


def recall_at(gts, preds, k, thrs):
    hits, total = np.zeros(len(thrs)), 0
    for img_id, gt in gts.items():
        total += len(gt)
        pred = preds[img_id][:k]
        if len(gt) and len(pred):
            best = bbox_overlaps(torch.as_tensor(gt),
                                 torch.as_tensor(pred)).amax(1).numpy()
            hits += [(best >= t).sum() for t in thrs]
    return hits / max(total, 1)


def ap50(coco, preds):
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' chatter
        return _ap50(coco, preds)


def _ap50(coco, preds):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO()
    gt.dataset = coco
    gt.createIndex()
    dets = []
    for img_id, boxes in preds.items():
        for rank, (x1, y1, x2, y2) in enumerate(boxes[:30]):
            dets.append(
                dict(
                    image_id=img_id,
                    category_id=1,
                    bbox=[
                        float(x1),
                        float(y1),
                        float(x2 - x1),
                        float(y2 - y1)
                    ],
                    score=1.0 / (1 + rank)))
    if not dets:
        return 0.0
    dt = gt.loadRes(dets)
    ev = COCOeval(gt, dt, 'bbox')
    ev.params.useCats = 0
    ev.params.maxDets = [1, 10, 30]
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return float(ev.stats[1])


def eigen_method(net, stride_idx, centre, tau):
    from mmdet_joindet.models.task_modules.object_priors import \
        EigenRegionPriorGenerator
    gen = EigenRegionPriorGenerator(
        max_priors=30, level=stride_idx, centre=centre, tau=tau)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)

    def run(img):
        h, w = img.shape[:2]
        x = torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1)[None]
        with torch.no_grad():
            feats = net((x.float() - mean) / std)
        meta = dict(
            img_shape=(h, w),
            batch_input_shape=(h, w),
            ori_shape=(h, w),
            scale_factor=(1.0, 1.0))
        return gen.generate(list(feats), [meta])[0].bboxes.numpy()

    return run


def build_resnet(depth, checkpoint):
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    init = (
        dict(type='Pretrained', checkpoint=checkpoint) if checkpoint else None)
    net = ResNet(depth=depth, out_indices=(1, 2, 3), init_cfg=init)
    if checkpoint:
        with contextlib.redirect_stdout(io.StringIO()):
            net.init_weights()
    net.eval()  # ResNet.train() returns None: no chaining
    return net


def evaluate(name, method, coco, images, gts, root):
    """Print one row; return the predictions of the first images."""
    preds, start = {}, time.perf_counter()
    for im in images:
        img = cv2.imread(osp.join(root, 'images', im['file_name']))
        preds[im['id']] = method(img)
    ms = 1e3 * (time.perf_counter() - start) / len(images)
    thrs = np.arange(0.5, 0.96, 0.05)
    ar = {k: recall_at(gts, preds, k, thrs) for k in (1, 10, 30)}
    per = np.mean([len(p) for p in preds.values()])
    print(f'{name:<44} {per:5.1f} {100 * ar[1].mean():6.1f} '
          f'{100 * ar[10].mean():6.1f} {100 * ar[30].mean():6.1f} '
          f'{100 * ar[10][0]:7.1f} {100 * ar[30][0]:7.1f} '
          f'{100 * ap50(coco, preds):6.1f} {ms:8.1f}')
    return [preds[im['id']] for im in images[:FIGURE_IMAGES]]


FIGURE_IMAGES = 4


def save_figure(path, root, images, gts, rows, tile=256):
    """A grid: one row per method, ground truth in green, priors in red
    (top 10), each image scaled to ``tile`` x ``tile``."""
    tiles = []
    for name, preds in rows:
        row = []
        for im, boxes in zip(images[:FIGURE_IMAGES], preds):
            img = cv2.imread(osp.join(root, 'images', im['file_name']))
            scale = (tile / img.shape[1], tile / img.shape[0])
            img = cv2.resize(
                img, (tile, tile), interpolation=cv2.INTER_NEAREST)
            for b in gts[im['id']]:
                cv2.rectangle(img, *_corners(b, scale), (0, 200, 0), 1)
            for b in boxes[:10]:
                cv2.rectangle(img, *_corners(b, scale), (0, 0, 255), 1)
            row.append(img)
        label = np.full((tile, 200, 3), 255, np.uint8)
        for i, line in enumerate(_wrap(name, 24)):
            cv2.putText(label, line, (4, 20 + 16 * i),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        tiles.append(np.concatenate([label] + row, 1))
    cv2.imwrite(path, np.concatenate(tiles, 0))


def _corners(box, scale):
    x1, x2 = (int(round(v * scale[0])) for v in box[0::2])
    y1, y2 = (int(round(v * scale[1])) for v in box[1::2])
    return (x1, y1), (x2 - 1, y2 - 1)


def _wrap(text, width):
    words, lines = text.split(), ['']
    for w in words:
        if len(lines[-1]) + len(w) + 1 > width:
            lines.append('')
        lines[-1] = (lines[-1] + ' ' + w).strip()
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', required=True)
    parser.add_argument('--backbone', default=None)
    parser.add_argument('--depth', type=int, default=18)
    parser.add_argument('--sweep', action='store_true')
    parser.add_argument(
        '--figure',
        help='write a PNG of the first images with each '
        "method's top-10 boxes (default setting only)")
    args = parser.parse_args()
    from mmdet.registry import TASK_UTILS

    import mmdet_joindet  # noqa: F401
    coco, images, gts = load_set(args.data)
    n_obj = sum(len(g) for g in gts.values())
    print(f'{args.data}: {len(images)} images, {n_obj} objects')
    print(f'{"method":<44} {"boxes":>5} {"AR@1":>6} {"AR@10":>6} '
          f'{"AR@30":>6} {"R50@10":>7} {"R50@30":>7} {"AP50":>6} '
          f'{"ms/img":>8}')
    backbones = [('random', None)]
    if args.backbone:
        backbones.insert(0, ('self-supervised', args.backbone))
    settings = [(2, True, 0.2)]  # stride 32, centred, TokenCut's tau
    if args.sweep:
        settings = list(
            itertools.product((0, 1, 2), (True, False), (0.1, 0.2, 0.3)))
    rows = []  # the default setting's boxes, for the figure
    for (label, ckpt), (level, centre,
                        tau) in itertools.product(backbones, settings):
        net = build_resnet(args.depth, ckpt)
        name = (f'R0 eigen, {label} R-{args.depth}, stride '
                f'{8 * 2**level}, {"centred" if centre else "raw"}, '
                f'tau {tau}')
        first = evaluate(name, eigen_method(net, level, centre, tau), coco,
                         images, gts, args.data)
        if (level, centre, tau) == (2, True, 0.2):
            rows.append((name, first))
    ss = TASK_UTILS.build(
        dict(type='SelectiveSearchPriorGenerator', max_priors=30, seed=0))
    rows.append(('selective search',
                 evaluate('selective search (fast, 128x128, top 30)',
                          lambda img: ss.generate([img])[0].bboxes.numpy(),
                          coco, images, gts, args.data)))
    crops = TASK_UTILS.build(
        dict(type='RandomCropPriorGenerator', num_crops=30, seed=0))
    rows.append(('random crops',
                 evaluate('random crops (30)',
                          lambda img: crops.generate([img])[0].bboxes.numpy(),
                          coco, images, gts, args.data)))
    if args.figure:
        save_figure(args.figure, args.data, images, gts, rows)
        print(f'figure: {args.figure}')


if __name__ == '__main__':
    main()
