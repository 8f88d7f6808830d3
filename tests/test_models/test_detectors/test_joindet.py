# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""JoinDet: loss contract, three modes, prior extraction, SwAV loading."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_joindet  # noqa: F401
from mmdet_joindet.testing import tiny_detr_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
MODEL_CFG = osp.join(
    REPO, 'configs/_base_/models/joindet_deformable-detr_r50-swav.py')
SIZES = [(64, 80), (48, 96)]


def tiny_cfg(**model_overrides):
    cfg = Config.fromfile(MODEL_CFG)
    cfg.model.update(model_overrides)
    return tiny_detr_config(cfg)


def build(cfg):
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def model():
    return build(tiny_cfg())


def batch(sizes=SIZES, num_boxes=(3, 2)):
    from test_deformable_detr import make_batch
    return make_batch(sizes, num_boxes)


def total(losses, key):
    return sum(v for k, v in losses.items() if k.endswith(key))


def test_loss_without_priors(model):
    model.train()
    inputs, samples = batch(num_boxes=(0, ))
    losses = model.loss(inputs, samples)
    assert total(losses, 'loss_cls') > 0
    for key in ('loss_bbox', 'loss_iou', 'loss_emb'):
        assert total(losses, key) == 0, key
    sum(losses.values()).backward()  # still differentiable


def test_loss_with_priors_and_gradients(model):
    model.train()
    model.zero_grad()
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    for key in ('loss_cls', 'loss_bbox', 'loss_iou', 'loss_emb'):
        assert torch.isfinite(losses[key]) and losses[key] > 0, key
    emb = samples[0].gt_instances.embeddings
    assert emb.shape == (3, model.bbox_head.emb_dims) and not emb.requires_grad
    sum(losses.values()).backward()
    for name, p in model.named_parameters():
        if name.startswith('backbone.'):
            assert not p.requires_grad and p.grad is None, name
    for part in ('encoder', 'decoder', 'bbox_head.emb_branch',
                 'bbox_head.cls_branches', 'bbox_head.reg_branches'):
        grads = [
            p.grad for n, p in model.named_parameters() if n.startswith(part)
        ]
        assert grads and any(g is not None and g.abs().sum() > 0
                             for g in grads), part


def test_embedding_targets_are_backbone_c3_of_the_crops(model):
    """One batched pass equals cropping and running each prior alone."""
    from mmcv.ops import roi_align
    model.eval()  # crop_jitter only augments in training
    inputs, samples = batch()
    boxes = [s.gt_instances.bboxes for s in samples]
    targets = model.embedding_targets(inputs, boxes)
    assert model.emb_extractor is None  # frozen backbone: no second copy
    bb = model.backbone
    for i, b in enumerate(boxes):
        for k, box in enumerate(b):
            roi = torch.cat([box.new_tensor([i]), box])[None]
            crop = roi_align(inputs, roi, (128, 128), 1.0, 2, 'avg', True)
            x = bb.maxpool(bb.relu(bb.norm1(bb.conv1(crop))))
            x = bb.layer2(bb.layer1(x)).mean((2, 3))[0]
            torch.testing.assert_close(targets[i][k], x)


def test_unfrozen_backbone_gets_a_frozen_extractor():
    cfg = tiny_cfg()
    cfg.model.backbone.frozen_stages = 1
    model = build(cfg)
    assert model.emb_extractor is not None
    assert all(not p.requires_grad for p in model.emb_extractor.parameters())
    model.train()
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.emb_extractor.parameters())
    assert any(p.grad is not None
               for n, p in model.backbone.named_parameters()
               if n.startswith('layer4'))


@pytest.mark.parametrize('variant', [
    dict(),
    dict(with_box_refine=True),
    dict(with_box_refine=True, as_two_stage=True),
])
def test_three_modes(variant):
    model = build(tiny_cfg(**variant))
    model.train()
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    results = model.predict(inputs, samples)
    outs = model(inputs, samples, mode='tensor')
    # prior extraction reads the encoder memory in every variant
    for p, (h, w) in zip(model.extract_priors(inputs, samples), SIZES):
        assert p.eigen_map.shape == (-(-h // 32), -(-w // 32))
    assert len(results) == 2 and outs[0].shape[-1] == 1
    for res, (h, w) in zip(results, SIZES):
        b = res.pred_instances.bboxes
        assert (b >= 0).all()
        assert (b[:, 0::2] <= w).all() and (b[:, 1::2] <= h).all()


def check_inside(boxes, h, w):
    assert boxes.shape[-1] == 4 and torch.isfinite(boxes).all()
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()


def test_extract_priors(model):
    model.eval()
    # Original images larger than the network input: scale_factor 0.5.
    inputs, samples = batch()
    for s in samples:
        h, w = s.metainfo['img_shape']
        s.set_metainfo(dict(ori_shape=(2 * h, 2 * w), scale_factor=(.5, .5)))
    priors = model.extract_priors(inputs, samples)
    assert len(priors) == 2
    for p, (h, w) in zip(priors, SIZES):
        # stride-32 cells over the valid (non-padded) part of the input
        assert p.eigen_map.shape == (-(-h // 32), -(-w // 32))
        assert p.fg_mask.dtype == torch.bool
        check_inside(p.region.bboxes, 2 * h, 2 * w)
        check_inside(p.instance.bboxes, 2 * h, 2 * w)
        assert (p.predictions.scores
                > model.bbox_head.foreground_threshold).all()
        assert len(p.instance) <= len(p.predictions)
        assert len(p.object_priors()) == len(p.region) + len(p.instance)
    # Each image alone (same padded canvas, so mmdet's GroupNorm neck sees
    # the same input) gives the same priors.
    for i in range(2):
        alone = model.extract_priors(inputs[i:i + 1], samples[i:i + 1])[0]
        torch.testing.assert_close(
            alone.eigen_map, priors[i].eigen_map, atol=1e-4, rtol=0)
        assert torch.equal(alone.fg_mask, priors[i].fg_mask)
        torch.testing.assert_close(alone.region.bboxes,
                                   priors[i].region.bboxes)
        torch.testing.assert_close(alone.instance.bboxes,
                                   priors[i].instance.bboxes)


def test_instance_priors_follow_the_foreground_rule(model):
    """Force every query to foreground: instance priors = eq. 6's subset."""
    from mmdet_joindet.priors import instance_keep
    model.eval()
    head = model.bbox_head
    saved = [b.bias.data.clone() for b in head.cls_branches]
    for b in head.cls_branches:
        b.bias.data.fill_(10.0)
    try:
        inputs, samples = batch()
        for s in samples:  # original images twice the network input
            h, w = s.metainfo['img_shape']
            s.set_metainfo(
                dict(ori_shape=(2 * h, 2 * w), scale_factor=(.5, .5)))
        priors = model.extract_priors(inputs, samples)
    finally:
        for b, bias in zip(head.cls_branches, saved):
            b.bias.data.copy_(bias)
    for p, s in zip(priors, samples):
        assert len(p.predictions) == model.num_queries
        # original pixels -> input pixels (x 0.5) -> cells (/ stride)
        cells = p.predictions.bboxes * 0.5 / torch.tensor(p.stride * 2)
        keep = instance_keep(cells, p.fg_mask, 0.5)
        torch.testing.assert_close(p.instance.bboxes,
                                   p.predictions.bboxes[keep])


@pytest.mark.parametrize('alpha, gamma', [(0.25, 2.0), (0.5, 2.0), (0.25, 0.0),
                                          (0.1, 1.0), (0.75, 3.0)])
def test_focal_decision_threshold_minimises_the_focal_loss(alpha, gamma):
    """Against a brute force over mmdet's own focal loss: the score that
    minimises the expected loss of a query of posterior 1/2."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    from mmdet_joindet.models.dense_heads import focal_decision_threshold
    logits = torch.linspace(-8, 8, 400001, dtype=torch.float64)[:, None]

    def loss(target):
        return py_sigmoid_focal_loss(  # one-hot targets, [N, 1]
            logits,
            torch.full_like(logits, target),
            gamma=gamma,
            alpha=alpha,
            reduction='none')[:, 0]

    expected = 0.5 * loss(1) + 0.5 * loss(0)
    best = logits[expected.argmin(), 0].sigmoid().item()
    assert focal_decision_threshold(alpha, gamma) == pytest.approx(
        best, abs=1e-4)


def test_focal_decision_threshold_closed_forms_and_errors():
    from mmdet_joindet.models.dense_heads import focal_decision_threshold
    assert focal_decision_threshold(0.5, 2.0) == pytest.approx(0.5)
    for alpha in (0.1, 0.25, 0.9):  # gamma 0: weighted BCE, p* = alpha
        assert focal_decision_threshold(alpha, 0.0) == pytest.approx(alpha)
    for alpha, gamma in ((0.0, 2.0), (1.0, 2.0), (0.25, -1.0), (0.25,
                                                                float('nan'))):
        with pytest.raises(ValueError, match='alpha'):
            focal_decision_threshold(alpha, gamma)


def test_foreground_is_the_argmax_under_the_focal_loss(model):
    """A defect found by the validity benchmark: a 0.5 cut on a focal-loss
    head kept no query of a briefly pretrained JoinDet (its best query
    scored 0.39 in the median image), so no instance prior was ever made.
    A query the focal-trained classifier scores 0.45 is more likely
    foreground than not, and is a foreground prediction."""
    from mmdet_joindet.models.dense_heads import focal_decision_threshold
    model.eval()
    head = model.bbox_head
    assert head.foreground_threshold == pytest.approx(
        focal_decision_threshold(0.25, 2.0))
    saved = [(b.weight.data.clone(), b.bias.data.clone())
             for b in head.cls_branches]
    for b in head.cls_branches:  # every query scores 0.45
        b.weight.data.zero_()
        b.bias.data.fill_(torch.logit(torch.tensor(0.45)).item())
    try:
        inputs, samples = batch()
        img_feats = model.extract_feat(inputs)
        head_inputs = model.forward_transformer(img_feats, samples)
        metas = [s.metainfo for s in samples]
        args = (head_inputs['hidden_states'], head_inputs['references'], metas)
        found = head.foreground_predictions(*args)
        half = head.foreground_predictions(*args, score_thr=0.5)
    finally:
        for b, (w, bias) in zip(head.cls_branches, saved):
            b.weight.data.copy_(w)
            b.bias.data.copy_(bias)
    assert [len(p) for p in found] == [model.num_queries] * 2
    assert [len(p) for p in half] == [0, 0]


def test_foreground_threshold_of_a_cross_entropy_head():
    cfg = tiny_cfg()
    cfg.model.bbox_head.loss_cls = dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=2.0)
    cfg.model.train_cfg.assigner.match_costs[0] = dict(
        type='ClassificationCost', weight=2.0)
    head = build(cfg).bbox_head
    assert head.foreground_threshold == 0.5


def test_backbone_region_priors(model):
    inputs, samples = batch()
    r0 = model.backbone_region_priors(inputs, samples)
    for p, (h, w) in zip(r0, SIZES):
        if len(p):
            check_inside(p.bboxes, h, w)
        assert (p.scores == 1).all()


def test_swav_layout_checkpoint_fills_the_backbone(tmp_path):
    """A file laid out like swav_800ep_pretrain.pth.tar loads fully."""
    from mmdet.models.backbones import ResNet
    src = ResNet(depth=18, init_cfg=None)
    # Different from a fresh init everywhere, so "loaded" is observable.
    state = {
        f'module.{k}': v.clone() + (0.01 if v.is_floating_point() else 3)
        for k, v in src.state_dict().items()
    }
    state['module.projection_head.0.weight'] = torch.randn(16, 512)
    state['module.prototypes.weight'] = torch.randn(30, 16)
    path = tmp_path / 'swav_800ep_pretrain.pth.tar'
    torch.save(state, path)
    cfg = tiny_cfg()
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path))
    model = build(cfg)
    own = model.backbone.state_dict()
    expected = {
        k[len('module.'):]: v
        for k, v in state.items()
        if not k.startswith(('module.projection_head', 'module.prototypes'))
    }
    assert set(own) == set(expected)
    for k, v in own.items():
        torch.testing.assert_close(v, expected[k], msg=k)


def test_crop_autocast_stays_close(model):
    model.eval()
    inputs, samples = batch()
    boxes = [s.gt_instances.bboxes for s in samples]
    exact = torch.cat(model.embedding_targets(inputs, boxes))
    model.crop_autocast = 'bfloat16'
    try:
        fast = torch.cat(model.embedding_targets(inputs, boxes))
    finally:
        model.crop_autocast = None
    assert fast.dtype == torch.float32
    err = (fast - exact).abs().mean() / exact.abs().mean()
    assert 0 < err < 0.02
    with pytest.raises(ValueError, match='crop_autocast'):
        build(tiny_cfg(crop_autocast='int8'))


def test_object_priors_sources():
    """R_n of eq. 7 and the Table 5 ablations' parts, in the order named."""
    from mmengine.structures import InstanceData

    from mmdet_joindet.models.detectors import JoinDetPriors

    def part(value, n):
        return InstanceData(
            bboxes=torch.full((n, 4), float(value)), scores=torch.ones(n))

    p = JoinDetPriors(None, None, (32., 32.), part(1, 2), part(2, 3),
                      part(3, 1))
    assert p.object_priors().bboxes[:, 0].tolist() == [1, 1, 3]
    assert p.object_priors(('instance', 'region')).bboxes[:, 0].tolist() \
        == [3, 1, 1]
    assert p.object_priors(('predictions', )).bboxes[:, 0].tolist() == [2] * 3
    for bad in ((), ('region', 'region'), ('boxes', ), 'region'):
        with pytest.raises(ValueError, match='prior sources'):
            p.object_priors(bad)


def test_update_pass_takes_the_configured_sources(model):
    """What the prior hook's pass returns per image is the chosen parts of
    extract_priors, in order (Table 5 ablations)."""
    from functools import partial

    from mmdet_joindet.engine.hooks import PriorUpdateHook
    from mmdet_joindet.engine.prior_inference import joint_priors
    model.eval()
    inputs, samples = batch()
    full = model.extract_priors(inputs, samples)
    for sources in (('region', ), ('instance', ), ('predictions', ),
                    ('region', 'instance')):
        got = partial(joint_priors, sources=sources)(model, inputs, samples)
        for g, p in zip(got, full):
            want = torch.cat([getattr(p, s).bboxes for s in sources])
            torch.testing.assert_close(g.bboxes, want)
            # every part's size, whichever are taken, for the pass's log
            assert g.metainfo['counts'] == {
                'region': len(p.region),
                'instance': len(p.instance),
                'predictions': len(p.predictions)
            }
    with pytest.raises(ValueError, match='prior sources'):
        PriorUpdateHook(
            infer_pipeline=[
                dict(type='PackDetInputs', meta_keys=('prior_index', ))
            ],
            sources=('region', 'boxes'))
