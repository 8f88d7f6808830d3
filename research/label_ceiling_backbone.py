# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Train a ResNet *with the labels*, to measure the ceiling of the eigen cut.

    PYTHONPATH=.:benchmarks python research/label_ceiling_backbone.py \
        --data data/proxy/train --out work_dirs/label_ceiling_r18 \
        [--iters 300] [--scale 2]

The eigen-map region priors (R0, paper eq. 3) can be no better than the
features they cut. To tell the limits of the cut itself (one bipartition
per image, the grid) from those of a self-supervised backbone, this trains
an mmdet ResNet-18 on the labeled proxy images with the most cut-friendly
supervision there is: every cell of C3 (stride 8) and C4 (stride 16) is
classified as background or as the digit whose box holds the cell's
centre (the smallest such box), cross-entropy through a 1x1 conv per
level. Images are resized by ``--scale`` (the scale the priors are read
at), flipped at random and colour-jittered. The result is written as
``<out>/backbone.pth`` in the format of ``tools/train_ssl_backbone.py``,
so ``bench_prior_quality.py --backbone`` reads it the same way. This is a
measuring instrument, not part of JoinDet: JoinDet never sees labels
before finetuning.
"""
import argparse
import json
import os.path as osp
import time

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from bench_prior_quality import cells_in_boxes  # benchmarks/, on PYTHONPATH
from mmdet.models.backbones import ResNet

from mmdet_joindet.utils import save_atomic

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def cell_labels(boxes, labels, shape, stride, num_classes):
    """``[h, w]`` int64: the class of the smallest box holding each cell's
    centre, ``num_classes`` (background) elsewhere."""
    out = np.full(shape, num_classes, np.int64)
    inside = cells_in_boxes(boxes, shape, stride)
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) *
                       (boxes[:, 3] - boxes[:, 1]))  # largest first
    for i in order:  # smaller boxes overwrite larger ones
        out[inside[i]] = labels[i]
    return out


def load(root):
    ann = osp.join(root, osp.basename(osp.normpath(root)) + '.json')
    with open(ann) as f:
        coco = json.load(f)
    cats = {c['id']: i for i, c in enumerate(coco['categories'])}
    per = {im['id']: ([], []) for im in coco['images']}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        per[a['image_id']][0].append([x, y, x + w, y + h])
        per[a['image_id']][1].append(cats[a['category_id']])
    samples = []
    for im in coco['images']:
        img = cv2.imread(osp.join(root, 'images', im['file_name']))
        boxes, labels = per[im['id']]
        samples.append((img, np.array(boxes, np.float32).reshape(-1, 4),
                        np.array(labels, np.int64)))
    return samples, len(cats)


def batch(samples, idx, scale, rng, num_classes, strides=(8, 16)):
    imgs, targets = [], [[] for _ in strides]
    for i in idx:
        img, boxes, labels = samples[i]
        h, w = img.shape[:2]
        img = cv2.resize(img, (w * scale, h * scale))
        boxes = boxes * scale
        if rng.random() < 0.5:
            img = img[:, ::-1]
            boxes = boxes[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [
                w * scale, 0, w * scale, 0
            ]
        img = img.astype(np.float32) * rng.uniform(0.6, 1.4)  # brightness
        img = np.clip(img, 0, 255)[..., ::-1]  # BGR -> RGB
        imgs.append((img - MEAN) / STD)
        for t, s in zip(targets, strides):
            t.append(
                cell_labels(boxes, labels, (h * scale // s, w * scale // s), s,
                            num_classes))
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return x, [torch.from_numpy(np.stack(t)) for t in targets]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--scale', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    samples, num_classes = load(args.data)
    net = ResNet(depth=18, out_indices=(1, 2), init_cfg=None)
    heads = nn.ModuleList(nn.Conv2d(c, num_classes + 1, 1) for c in (128, 256))
    params = list(net.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1e-3, total_steps=args.iters, pct_start=0.1)
    net.train()
    start = time.perf_counter()
    for it in range(args.iters):
        idx = rng.choice(len(samples), args.batch_size, replace=False)
        x, targets = batch(samples, idx, args.scale, rng, num_classes)
        feats = net(x)
        loss = sum(
            F.cross_entropy(head(f), t)
            for head, f, t in zip(heads, feats, targets)) / len(heads)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 20 == 0 or it == args.iters - 1:
            print(
                f'iter {it + 1}/{args.iters} loss {loss.item():.4f} '
                f'{time.perf_counter() - start:.0f} s',
                flush=True)
    path = osp.join(args.out, 'backbone.pth')
    meta = dict(
        source='research/label_ceiling_backbone.py',
        iters=args.iters,
        scale=args.scale,
        data=args.data)
    save_atomic(dict(state_dict=net.state_dict(), meta=meta), path)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
