# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""mmdet's Deformable DETR, built from configs of this repo, on the CPU."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.structures import InstanceData

from mmdet_joindet.testing import tiny_detr_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
SMOKE = osp.join(
    REPO, 'configs/smoke/'
    'deformable-detr_r18-tiny_1xb2-2iter_shapes.py')
MMDET_CONFIGS = [
    'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
    'mmdet::deformable_detr/'
    'deformable-detr-refine-twostage_r50_16xb2-50e_coco.py',
]


def make_batch(sizes, num_boxes=(2, 0)):
    """Inputs [B, 3, H, W] (padded) and data samples with gt boxes."""
    H = max(h for h, _ in sizes)
    W = max(w for _, w in sizes)
    inputs = torch.zeros(len(sizes), 3, H, W)
    samples = []
    for i, (h, w) in enumerate(sizes):
        inputs[i, :, :h, :w] = torch.rand(3, h, w) * 255
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                batch_input_shape=(H, W),
                scale_factor=(1.0, 1.0),
                pad_shape=(H, W)))
        k = num_boxes[i % len(num_boxes)]
        xy = torch.rand(k, 2) * torch.tensor([w / 2, h / 2])
        wh = torch.rand(k, 2) * torch.tensor([w / 2, h / 2]) + 4
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1),
            labels=torch.zeros(k, dtype=torch.long))
        samples.append(sample)
    return inputs, samples


@pytest.fixture(scope='module', autouse=True)
def registered():
    register_all_modules()


@pytest.mark.parametrize('config', [SMOKE] + MMDET_CONFIGS)
def test_three_modes(config):
    if config == SMOKE:
        cfg = Config.fromfile(config)
    else:
        cfg = tiny_detr_config(get_config(config))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert sum(p.numel() for p in model.parameters()) < 20e6  # tiny
    inputs, samples = make_batch([(64, 80), (48, 96)])
    model.train()
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)

    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
        outs = model(inputs, samples, mode='tensor')
    assert len(results) == 2
    for res, (h, w) in zip(results, [(64, 80), (48, 96)]):
        boxes = res.pred_instances.bboxes
        assert len(boxes) <= cfg.model.test_cfg.max_per_img
        assert (boxes[:, 0::2] <= w + 1e-3).all()
        assert (boxes[:, 1::2] <= h + 1e-3).all()
    cls_scores, box_preds = outs[0], outs[1]
    assert cls_scores.shape[:3] == (cfg.model.decoder.num_layers, 2,
                                    cfg.model.num_queries)
    assert box_preds.shape[-1] == 4
