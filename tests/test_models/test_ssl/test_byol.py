# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""BYOL: the loss learns and the target is an exact EMA (the tool that
trains it: ``tests/test_tools/test_train_ssl_backbone.py``)."""

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS, TRANSFORMS
from mmengine.optim import OptimWrapper

import mmdet_joindet  # noqa: F401  (checkpoint allow-list)
from mmdet_joindet.models.ssl import BYOL

TINY_BACKBONE = dict(
    type='ResNet',
    depth=18,
    base_channels=16,
    out_indices=(3, ),
    init_cfg=None)


def tiny_byol(**kwargs) -> BYOL:
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='BYOL',
            backbone=TINY_BACKBONE,
            hidden_channels=64,
            out_channels=32,
            **kwargs))
    model.init_weights()
    model.train()
    return model


@pytest.fixture(scope='module')
def batch(photos):
    """8 samples of two 48 px views of the astronaut (fixed seed)."""
    np.random.seed(0)
    two_views = TRANSFORMS.build(dict(type='TwoViews', size=48))
    img = np.ascontiguousarray(photos[0][..., ::-1])  # RGB -> BGR
    return dict(inputs=[two_views(dict(img=img))['inputs'] for _ in range(8)])


def test_loss_decreases_on_a_fixed_batch(batch):
    model = tiny_byol()
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    losses = [model.train_step(batch, optim)['loss'].item() for _ in range(15)]
    assert all(np.isfinite(losses)) and 0 < losses[0] <= 4
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    inputs = model.data_preprocessor(batch)['inputs']
    assert inputs.shape == (8, 2, 3, 48, 48) and inputs.dtype == torch.float
    feats = model(inputs, mode='tensor')  # views flattened, sample-major
    assert len(feats) == 1 and feats[0].shape == (16, 128, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(feats[0][2:4], model.backbone(inputs[1])[0])


def test_target_is_an_exact_ema_without_gradient(batch):
    model = tiny_byol(momentum=0.9, total_updates=4)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    names = [n for n, _ in model.named_parameters() if n.startswith('target')]
    assert names and all(not p.requires_grad
                         for n, p in model.named_parameters() if n in names)
    for step in range(2):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        tau = model.tau
        # cosine from 0.9 to 1 over 4 updates: 1 - 0.1 * (cos(pi k/4) + 1)/2
        expected_tau = 1 - 0.1 * (np.cos(np.pi * step / 4) + 1) / 2
        assert tau == pytest.approx(expected_tau)
        model.train_step(batch, optim)
        params = dict(model.named_parameters())
        for name in names:
            # the target took the online weights the previous step left
            online = before[name.replace('target_', '', 1)]
            assert params[name].grad is None
            expected = before[name].mul(tau).add(online, alpha=1 - tau)
            torch.testing.assert_close(params[name], expected)
        assert not torch.equal(params['backbone.conv1.weight'],
                               before['backbone.conv1.weight'])
    assert int(model.num_updates) == 2
    # tau reaches 1 after total_updates: the target stops moving
    model.num_updates.fill_(4)
    assert model.tau == 1.0
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train_step(batch, optim)
    for name in names:
        torch.testing.assert_close(
            dict(model.named_parameters())[name], frozen[name])
    # outside training the target does not move
    model.eval()
    model.loss(model.data_preprocessor(batch)['inputs'])
    assert int(model.num_updates) == 5
