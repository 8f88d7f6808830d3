# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The experiment kit end to end on tiny data, through the tools:
pretrain -> score the priors -> Figure 6 -> convert -> finetune a stock
Deformable DETR -> evaluate (COCO and class-agnostic) -> publish."""
import hashlib
import json
import os
import os.path as osp
import re
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmdet_joindet  # noqa: F401  (checkpoint allow-list)
from mmdet_joindet.datasets import PriorStore
from mmdet_joindet.testing import (make_shapes_coco, run_checked,
                                   tiny_data_config, tiny_detr_config)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN = osp.join(REPO, 'configs/joindet/joindet_r18-tiny_1xb2-3e_shapes.py')
FINETUNE = osp.join(
    REPO, 'configs/finetune/'
    'deformable-detr_r50_joindet-coco-pre_8xb3-400e_coco-10pct.py')
AGNOSTIC = osp.join(
    REPO, 'configs/joindet/'
    'joindet_deformable-detr_r50-swav_class-agnostic_coco-val.py')
# the keys a converted checkpoint leaves out (utils/convert.py): the
# 1-logit foreground classifier of every decoder layer
DOCUMENTED_MISSING = re.compile(r'bbox_head\.cls_branches\.\d+\.(weight|bias)')


def tool(cwd, script, *args):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    return run_checked(
        [sys.executable, osp.join(REPO, script), *args], str(cwd), env)


def tiny_variant(path, root, out, num_queries, **options) -> str:
    """The config at ``path`` with the tiny model and ``root``'s shapes
    data, written to ``out`` for the tools."""
    cfg = tiny_detr_config(
        Config.fromfile(path), num_queries=num_queries, image_size=(96, 128))
    cfg = tiny_data_config(cfg, str(root / 'data' / 'shapes'), num_images=6)
    cfg.merge_from_dict(options)
    cfg.dump(str(out))
    return str(out)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """Two epochs of the tiny JoinDet pretraining: rounds 0, 1, 2."""
    root = tmp_path_factory.mktemp('kit')
    make_shapes_coco(str(root / 'data' / 'shapes'), num_images=6, seed=5)
    tool(root, 'tools/train.py', PRETRAIN, '--work-dir', 'pre',
         '--cfg-options', 'train_cfg.max_epochs=2', 'randomness.seed=0')
    return root


def greedy_recall(gt, boxes, scores, thr=0.5):
    """COCO's one-to-one matching at one IoU, by brute force: detections
    in descending score order take the best still-unmatched ground truth
    box with IoU >= thr."""
    found = total = 0
    for g, b, s in zip(gt, boxes, scores):
        total += len(g)
        free = list(range(len(g)))
        for k in np.argsort(-s, kind='stable'):
            best, best_iou = None, thr
            for j in free:
                x1, y1 = max(b[k][0], g[j][0]), max(b[k][1], g[j][1])
                x2, y2 = min(b[k][2], g[j][2]), min(b[k][3], g[j][3])
                inter = max(0, x2 - x1) * max(0, y2 - y1)
                union = ((b[k][2] - b[k][0]) * (b[k][3] - b[k][1]) +
                         (g[j][2] - g[j][0]) * (g[j][3] - g[j][1]) - inter)
                if inter / union >= best_iou:
                    best, best_iou = j, inter / union
            if best is not None:
                free.remove(best)
                found += 1
    return found / total


def test_scoring_tool_on_the_pretraining_store(pretrained):
    root = pretrained
    out = tool(root, 'tools/analysis_tools/score_priors.py', 'pre/priors',
               'data/shapes/annotations.json', '--out', 'scores.json')
    rows = json.loads((root / 'scores.json').read_text())
    assert [r['round'] for r in rows] == [0, 1, 2]
    assert [r['mode'] for r in rows] == ['R0', 'box_smooth', 'box_smooth']
    assert '| round | written by |' in out and 'AR50@30' in out
    coco = json.loads((root / 'data/shapes/annotations.json').read_text())
    gt = [[] for _ in coco['images']]
    for a in coco['annotations']:  # image ids 1..N = store order
        x, y, w, h = a['bbox']
        gt[a['image_id'] - 1].append([x, y, x + w, y + h])
    store = PriorStore(str(root / 'pre' / 'priors'))
    for row in rows:
        boxes, scores = store.load(row['round']).to_lists()
        assert row['priors_per_image'] == pytest.approx(
            sum(map(len, boxes)) / len(boxes))
        assert row['AR50@100'] == pytest.approx(
            greedy_recall(gt, boxes, scores))
        for k in (1, 10, 30):
            assert row[f'AR@{k}'] <= row[f'AR@{100}'] + 1e-9


def test_scoring_refuses_a_json_of_other_images(pretrained, tmp_path):
    from mmdet_joindet.evaluation import score_prior_rounds
    coco = json.loads(
        (pretrained / 'data/shapes/annotations.json').read_text())
    coco['images'] = coco['images'][:-1]  # one image fewer
    other = tmp_path / 'other.json'
    other.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match='does not list the images'):
        score_prior_rounds(str(pretrained / 'pre' / 'priors'), str(other))
    with pytest.raises(FileNotFoundError, match='no prior round'):
        score_prior_rounds(str(tmp_path), str(other))


def test_figure6_png(pretrained):
    root = pretrained
    tool(root, 'tools/analysis_tools/vis_priors.py', PRETRAIN, '--prior-root',
         'pre/priors', '--checkpoint', 'pre/epoch_2.pth', '--ann-file',
         'data/shapes/annotations.json', '--num', '2', '--out', 'fig6.png',
         '--cfg-options',
         f'train_dataloader.dataset.dataset.data_root={root}/data/shapes/')
    img = cv2.imread(str(root / 'fig6.png'))
    assert img is not None
    # 2 rows of 192 px plus title bands; image, map, 3 rounds, ground truth
    assert img.shape[0] >= 2 * 192 and img.shape[1] >= 6 * 192
    assert img.std() > 20  # drawn content, not a blank canvas
    left = img[20:200, :150]
    assert len(np.unique(left.reshape(-1, 3), axis=0)) > 50


def test_pretrain_convert_finetune_evaluate_publish(pretrained):
    root = pretrained
    tool(root, 'tools/model_converters/joindet_to_deformable_detr.py',
         'pre/epoch_2.pth', 'converted.pth')
    ft_cfg = tiny_variant(
        FINETUNE,
        root,
        root / 'finetune_tiny.py',
        num_queries=20,
        load_from=str(root / 'converted.pth'),
        train_cfg=dict(max_epochs=1, val_interval=1))
    log = tool(root, 'tools/train.py', ft_cfg, '--work-dir', 'ft')
    assert 'Load checkpoint from' in log
    assert 'unexpected key' not in log
    missing = re.search(r'missing keys in source state_dict: (.*)', log)
    assert missing, 'the classifier must be reported missing'
    keys = [k.strip() for k in missing.group(1).split(',')]
    assert keys and all(DOCUMENTED_MISSING.fullmatch(k) for k in keys), keys
    assert 'coco/bbox_mAP' in log

    out = tool(root, 'tools/test.py', ft_cfg, 'ft/epoch_1.pth', '--work-dir',
               'ft_test')
    assert re.search(r'coco/bbox_mAP: -?\d', out)
    tool(root, 'tools/analysis_tools/vis_predictions.py', ft_cfg,
         'ft/epoch_1.pth', '--num', '2', '--score-thr', '0.0', '--out',
         'preds.png')
    img = cv2.imread(str(root / 'preds.png'))
    assert img.shape[0] >= 2 * 192 and img.shape[1] >= 2 * 192
    assert img.std() > 20  # ground truth and predictions drawn

    agnostic = tiny_variant(
        AGNOSTIC, root, root / 'agnostic_tiny.py', num_queries=20)
    out = tool(root, 'tools/test.py', agnostic, 'pre/epoch_2.pth',
               '--work-dir', 'agn')
    for key in ('agnostic/bbox_mAP', 'agnostic/AR@1', 'agnostic/AR@100'):
        assert re.search(rf'{key}: -?\d', out), key

    for src in ('pre/epoch_2.pth', 'converted.pth'):
        out = tool(root, 'tools/model_converters/publish_model.py', src,
                   f'zoo/{osp.basename(src)}')
        path = str(root / re.search(r'published (\S+)', out).group(1))
        data = open(path, 'rb').read()
        assert path.endswith(f'-{hashlib.sha256(data).hexdigest()[:8]}.pth')
        ckpt = torch.load(path, weights_only=True)
        assert set(ckpt) <= {'meta', 'state_dict'}
        assert 'optimizer' not in ckpt and 'state_dict' in ckpt
