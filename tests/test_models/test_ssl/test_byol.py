# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""BYOL: the loss learns, the target is an exact EMA, the tool exports a
backbone that mmdet's ResNet loads as ``Pretrained``."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS, TRANSFORMS
from mmengine.optim import OptimWrapper

import mmdet_joindet  # noqa: F401  (checkpoint allow-list)
from mmdet_joindet.models.ssl import BYOL

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
TOOL = osp.join(REPO, 'tools/train_ssl_backbone.py')
CONFIG = osp.join(REPO, 'configs/ssl/byol_r18_proxy-unlabeled.py')
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
            online = params[name.replace('target_', '', 1)]
            assert params[name].grad is None
            expected = before[name].mul(tau).add(online, alpha=1 - tau)
            torch.testing.assert_close(params[name], expected)
        assert not torch.equal(params['backbone.conv1.weight'],
                               before['backbone.conv1.weight'])
    model.num_updates.fill_(4)
    assert model.tau == 1.0
    model.loss(model.data_preprocessor(batch)['inputs'])
    with pytest.raises(RuntimeError, match='not updated'):
        model.loss(model.data_preprocessor(batch)['inputs'])


def test_tool_exports_a_pretrained_resnet(tmp_path):
    images = []
    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / 'data/images')
    for i in range(6):
        img = rng.integers(0, 255, (40 + 4 * i, 48, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f'data/images/{i}.png'), img)
        images.append(dict(id=i, file_name=f'{i}.png'))
    (tmp_path / 'data/unlabeled.json').write_text(
        json.dumps(dict(images=images)))
    work_dir = tmp_path / 'work'
    options = [
        f'train_dataloader.dataset.data_root={tmp_path}/data/',
        'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_dataloader.dataset.pipeline.1.size=32', 'train_cfg.max_iters=3',
        'model.backbone.base_channels=16', 'model.hidden_channels=32',
        'model.out_channels=16'
    ]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    cmd = [sys.executable, TOOL, CONFIG, '--work-dir', str(work_dir)]
    proc = subprocess.run(
        cmd + ['--cfg-options', *options],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = str(work_dir / 'backbone.pth')
    files = os.listdir(work_dir)
    assert {'backbone.pth', 'iter_3.pth'} <= set(files)
    assert not [f for f in files if f.endswith('.tmp')]
    exported = torch.load(path)
    assert exported['meta']['iter'] == 3
    runner_ckpt = torch.load(work_dir / 'iter_3.pth')['state_dict']
    online = {
        k[len('backbone.'):]: v
        for k, v in runner_ckpt.items() if k.startswith('backbone.')
    }
    net = ResNet(
        depth=18,
        base_channels=16,
        init_cfg=dict(type='Pretrained', checkpoint=path))
    net.init_weights()
    loaded = net.state_dict()
    assert set(exported['state_dict']) == set(loaded) == set(online)
    for key, value in online.items():
        assert torch.equal(loaded[key], value), key
