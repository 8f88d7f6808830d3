# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Class-agnostic AP / AR against pycocotools' own COCOeval and against a
brute-force one-to-one matcher."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmdet_joindet.evaluation import (COCO_IOU_THRS, box_recall,
                                      class_agnostic_eval)
from mmdet_joindet.testing import make_shapes_coco

# COCOeval.stats order (summarize, maxDets 1 / 10 / 100)
STATS_KEYS = [
    'mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@1', 'AR@10',
    'AR@100', 'AR_s@100', 'AR_m@100', 'AR_l@100'
]


def iou(a, b):
    """IoU of two xyxy boxes, by hand."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) -
             inter)
    return inter / union if union > 0 else 0.0


def greedy_recall(gts, dets, scores, k, thr):
    """One-to-one: per image the top-k detections by score (stable) each
    take the unmatched ground truth box of highest IoU >= thr."""
    hit = total = 0
    for gt, det, sc in zip(gts, dets, scores):
        total += len(gt)
        order = np.argsort(-np.asarray(sc), kind='stable')[:k]
        free = list(range(len(gt)))
        for d in order:
            best, best_iou = None, thr
            for g in free:
                v = iou(det[d], gt[g])
                if v >= best_iou:
                    best, best_iou = g, v
            if best is not None:
                free.remove(best)
                hit += 1
    return hit / total


def best_iou_recall(gts, dets, k, thr):
    """Many-to-one (a ground truth box is found when any of the first k
    boxes overlaps it by >= thr)."""
    hit = total = 0
    for gt, det in zip(gts, dets):
        total += len(gt)
        hit += sum(any(iou(d, g) >= thr for d in det[:k]) for g in gt)
    return hit / total


def random_boxes(rng, n, size=100.0):
    xy = rng.uniform(0, size * 0.8, (n, 2))
    wh = rng.uniform(2, size * 0.4, (n, 2))
    return np.concatenate([xy, xy + wh], 1)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_recall_equals_brute_force_one_to_one(seed):
    rng = np.random.default_rng(seed)
    gts, dets, scores = [], [], []
    for _ in range(6):
        gt = random_boxes(rng, int(rng.integers(0, 6)))
        # detections near the ground truth (several per box) and random
        near = np.concatenate([gt] * 2) + rng.normal(0, 4, (2 * len(gt), 4))
        det = np.concatenate([near, random_boxes(rng, 5)])
        det = det[rng.permutation(len(det))]
        gts.append(gt)
        dets.append(det)
        scores.append(rng.uniform(size=len(det)).round(1))  # with ties
    out = box_recall(gts, dets, scores, max_dets=(1, 3, 30))
    for k in (1, 3, 30):
        want = [greedy_recall(gts, dets, scores, k, t) for t in COCO_IOU_THRS]
        assert out[f'AR@{k}'] == pytest.approx(np.mean(want), abs=1e-9)
        assert out[f'AR50@{k}'] == pytest.approx(want[0], abs=1e-9)
        # one-to-one never exceeds the best-IoU definition
        ranked = [
            d[np.argsort(-s, kind='stable')] for d, s in zip(dets, scores)
        ]
        assert out[f'AR50@{k}'] <= best_iou_recall(gts, ranked, k, 0.5)


def test_recall_matches_best_iou_on_separated_objects():
    """Objects far apart and one box each: the two definitions agree."""
    rng = np.random.default_rng(3)
    gts, dets = [], []
    for _ in range(5):
        gt = np.array([[0, 0, 20, 20], [50, 50, 80, 90], [120, 10, 160, 40]],
                      float)
        det = gt + rng.normal(0, 3, gt.shape)
        gts.append(gt)
        dets.append(det[rng.permutation(3)])
    out = box_recall(gts, dets)
    for t in (0.5, 0.75, 0.9):
        assert box_recall(gts, dets, iou_thrs=[t])['AR@100'] == \
            pytest.approx(best_iou_recall(gts, dets, 100, t))
    assert 0 < out['AR@100'] < 1


def test_recall_rank_is_the_score_without_scores():
    gt = [np.array([[0, 0, 10, 10], [30, 30, 40, 40]], float)]
    det = [np.array([[30, 30, 40, 40], [0, 0, 10, 10]], float)]
    assert box_recall(gt, det)['AR@1'] == 0.5
    out = box_recall(gt, det, [np.array([0.1, 0.9])])
    assert out['AR@1'] == 0.5 and out['AR@10'] == 1.0


def test_recall_edge_cases():
    gt = [np.array([[0, 0, 10, 10]], float), np.zeros((0, 4))]
    # no box at all: recall 0; an image without ground truth adds nothing
    out = box_recall(gt, [np.zeros((0, 4)), np.zeros((0, 4))])
    assert out['AR@1'] == 0.0 and out['mAP'] == 0.0
    out = box_recall(gt, [np.zeros((0, 4)), np.array([[0, 0, 5, 5.]])])
    assert out['AR@100'] == 0.0
    # no ground truth anywhere: undefined, COCO's -1
    out = box_recall([np.zeros((0, 4))], [np.array([[0, 0, 5, 5.]])])
    assert out['AR@1'] == -1 and out['mAP'] == -1
    with pytest.raises(ValueError, match='2 images of ground truth but 1'):
        box_recall(gt, [np.zeros((0, 4))])
    with pytest.raises(ValueError, match='2 boxes but 1 scores'):
        box_recall(gt[:1], [np.zeros((2, 4))], [np.zeros(1)])
    with pytest.raises(ValueError, match='increasing'):
        box_recall(gt, gt, max_dets=(10, 1))


def coco_reference(gt_file, dets):
    """pycocotools' own numbers, as a user would get them."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_file)
        dt = gt.loadRes(copy.deepcopy(dets)) if dets else None
        if dt is None:
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
    return dict(zip(STATS_KEYS, ev.stats))


def shapes_case(tmp_path, name):
    """A real COCO json of generated shape scenes (several classes, one
    crowd box) and predictions of kind ``name``."""
    coco = make_shapes_coco(
        str(tmp_path / 'shapes'), num_images=10, max_objects=4, seed=5)
    coco['annotations'][3]['iscrowd'] = 1
    gt_file = str(tmp_path / 'gt.json')
    with open(gt_file, 'w') as f:
        json.dump(coco, f)
    rng = np.random.default_rng(7)
    ncat = len(coco['categories'])
    dets = []
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        if name == 'partial' and a['id'] % 3 == 0:
            continue
        jitter = 0 if name == 'perfect' else rng.normal(0, 2, 4)
        dets.append(
            dict(
                image_id=a['image_id'],
                bbox=list(np.array([x, y, w, h]) + jitter),
                score=float(rng.uniform(0.3, 1.0)),
                # the class is irrelevant: shuffled among the categories
                category_id=int(rng.integers(1, ncat + 1))))
    if name in ('partial', 'shuffled'):
        for _ in range(15):  # false positives
            im = coco['images'][int(rng.integers(len(coco['images'])))]
            x, y = rng.uniform(0, 40, 2)
            dets.append(
                dict(
                    image_id=im['id'],
                    bbox=[x, y, 20.0, 15.0],
                    score=float(rng.uniform(0, 1)),
                    category_id=1))
    if name == 'shuffled':
        dets = [dets[i] for i in rng.permutation(len(dets))]
    if name == 'empty':
        dets = []
    return coco, gt_file, dets


@pytest.mark.parametrize('name', ['perfect', 'empty', 'partial', 'shuffled'])
def test_eval_equals_cocoeval_use_cats_0(tmp_path, name):
    coco, gt_file, dets = shapes_case(tmp_path, name)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_file)
    ours = class_agnostic_eval(gt, dets)
    want = coco_reference(gt_file, dets)
    for key, value in want.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key
    if name == 'perfect':
        assert ours['mAP'] == pytest.approx(1.0)
    if name == 'empty':
        assert ours['AR@100'] == 0.0
