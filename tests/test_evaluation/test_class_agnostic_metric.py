# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""``ClassAgnosticCocoMetric`` through mmengine's ``Evaluator``, with and
without an ``ann_file``, in one process and in two gloo processes, against
pycocotools' own ``COCOeval`` with ``useCats=0``."""
import contextlib
import io
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import Evaluator
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import mmdet_joindet  # noqa: F401
from mmdet_joindet.testing import make_shapes_coco, run_checked

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
SCRIPT = osp.join(osp.dirname(__file__), 'two_process_metric.py')
# COCOeval.stats order -> the metric's keys
KEYS = [
    'bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m',
    'bbox_mAP_l', 'AR@1', 'AR@10', 'AR@100', 'AR_s@100', 'AR_m@100', 'AR_l@100'
]


def make_case(root, name):
    """A shapes COCO json (several classes, one crowd box) and per-image
    data samples whose predictions are of kind ``name``.

    Boxes are multiples of 0.25 px and scores float32, so the metric's
    float32 tensors and the reference's json hold the same numbers.
    """
    coco = make_shapes_coco(
        osp.join(root, 'shapes'), num_images=10, max_objects=4, seed=11)
    coco['annotations'][2]['iscrowd'] = 1
    ann_file = osp.join(root, 'gt.json')
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    rng = np.random.default_rng(3)
    ncls = len(coco['categories'])
    samples, dets = [], []
    for im in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == im['id']]
        gt = np.array([a['bbox'] for a in anns], np.float64).reshape(-1, 4)
        gt[:, 2:] += gt[:, :2]
        boxes = gt.copy()
        if name != 'perfect':
            boxes += np.round(rng.normal(0, 2, boxes.shape) * 4) / 4
        if name == 'partial':
            boxes = boxes[::2]
        if name in ('partial', 'shuffled'):
            xy = np.round(rng.uniform(0, 40, (3, 2)) * 4) / 4
            boxes = np.concatenate([boxes, np.hstack([xy, xy + 16])])
            boxes = boxes[rng.permutation(len(boxes))]
        if name == 'empty':
            boxes = boxes[:0]
        scores = rng.uniform(0.05, 1, len(boxes)).astype(np.float32)
        samples.append(
            dict(
                img_id=im['id'],
                ori_shape=(im['height'], im['width']),
                pred_instances=dict(
                    bboxes=torch.from_numpy(boxes.astype(np.float32)),
                    scores=torch.from_numpy(scores),
                    # any class: the metric merges them
                    labels=torch.from_numpy(rng.integers(0, ncls,
                                                         len(boxes)))),
                instances=[
                    dict(
                        bbox=list(b),
                        bbox_label=a['category_id'] - 1,
                        ignore_flag=a.get('iscrowd', 0))
                    for a, b in zip(anns, gt)
                ]))
        for (x1, y1, x2, y2), s in zip(boxes, scores):
            dets.append(
                dict(
                    image_id=im['id'],
                    category_id=1,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    score=float(s)))
    if name == 'shuffled':
        samples = [samples[i] for i in rng.permutation(len(samples))]
    classes = tuple(c['name'] for c in coco['categories'])
    return ann_file, classes, samples, dets


def reference(ann_file, dets):
    """pycocotools' own class-agnostic summary, rounded as mmdet rounds."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        if dets:
            dt = gt.loadRes(dets)
        else:
            dt = COCO()
            dt.dataset = dict(
                images=gt.dataset['images'],
                categories=gt.dataset['categories'],
                annotations=[])
            dt.createIndex()
        ev = COCOeval(gt, dt, 'bbox')
        ev.params.useCats = 0
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: round(float(v), 3) for k, v in zip(KEYS, ev.stats)}


def evaluate(classes, samples, **cfg):
    evaluator = Evaluator(
        METRICS.build(dict(type='ClassAgnosticCocoMetric', **cfg)))
    evaluator.dataset_meta = dict(classes=classes)
    for i in range(0, len(samples), 3):  # batches of 3
        evaluator.process(samples[i:i + 3])
    return evaluator.evaluate(len(samples))


@pytest.mark.parametrize('with_ann_file', [True, False])
@pytest.mark.parametrize('name', ['perfect', 'empty', 'partial', 'shuffled'])
def test_metric_equals_cocoeval_use_cats_0(tmp_path, name, with_ann_file):
    ann_file, classes, samples, dets = make_case(str(tmp_path), name)
    out = evaluate(
        classes, samples, ann_file=ann_file if with_ann_file else None)
    want = reference(ann_file, dets)
    for key in KEYS:
        assert out[f'agnostic/{key}'] == want[key], key
    assert out['agnostic/AR50@100'] >= out['agnostic/AR@100']
    if name == 'perfect':
        assert out['agnostic/bbox_mAP'] == 1.0
    if name == 'empty':
        assert out['agnostic/AR@100'] == 0.0
    if name == 'partial':
        assert 0 < out['agnostic/bbox_mAP'] < 1


def test_metric_options_and_errors(tmp_path):
    ann_file, classes, samples, dets = make_case(str(tmp_path), 'partial')
    out = evaluate(
        classes,
        samples,
        ann_file=ann_file,
        proposal_nums=(2, 5),
        iou_thrs=0.5,
        prefix='prior')
    assert set(out) == {
        'prior/' + k
        for k in ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_s', 'bbox_mAP_m',
                  'bbox_mAP_l', 'AR@2', 'AR50@2', 'AR@5', 'AR50@5', 'AR_s@5',
                  'AR_m@5', 'AR_l@5')
    }
    assert out['prior/AR@5'] == out['prior/AR50@5'] >= out['prior/AR@2']
    # format_only writes the result json and reports nothing
    prefix = str(tmp_path / 'out' / 'res')
    os.makedirs(osp.dirname(prefix))
    assert evaluate(
        classes,
        samples,
        ann_file=ann_file,
        format_only=True,
        outfile_prefix=prefix) == {}
    with open(prefix + '.bbox.json') as f:
        assert len(json.load(f)) == len(dets)
    with pytest.raises(ValueError, match='increasing positive'):
        evaluate(classes, samples, proposal_nums=(10, 1))


def test_two_gloo_processes_equal_one(tmp_path):
    """Each process sees half the images (interleaved); the numbers both
    report equal one process's, with and without ``ann_file``."""
    ann_file, classes, samples, dets = make_case(str(tmp_path), 'partial')
    torch.save(dict(classes=classes, samples=samples), tmp_path / 'samples.pt')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    for port, ann in ((29541, ann_file), (29542, '')):
        run_checked([
            sys.executable, '-m', 'torch.distributed.run',
            '--nproc_per_node=2', f'--master_port={port}', SCRIPT,
            str(tmp_path), ann
        ], REPO, env, 300)
        one = evaluate(classes, samples, ann_file=ann or None)
        for rank in (0, 1):
            with open(tmp_path / f'rank{rank}.json') as f:
                assert json.load(f) == one, (ann, rank)
    assert one['agnostic/bbox_mAP'] == reference(ann_file, dets)['bbox_mAP']
