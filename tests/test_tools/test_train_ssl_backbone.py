# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""tools/train_ssl_backbone.py trains each self-supervised config for a few
iterations and exports a backbone that mmdet's ResNet loads as
``Pretrained`` with every key."""
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
from mmdet.models.backbones import ResNet

import mmdet_joindet  # noqa: F401  (checkpoint allow-list)
from mmdet_joindet.testing import run_checked

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
TOOL = osp.join(REPO, 'tools/train_ssl_backbone.py')


@pytest.mark.parametrize('config, options', [
    ('byol_r18_proxy-unlabeled.py',
     ['model.hidden_channels=32', 'model.out_channels=16']),
    ('dense-swav_r18_proxy-unlabeled.py', [
        'model.view_size=32', 'model.hidden_channels=32',
        'model.out_channels=16', 'model.num_prototypes=8'
    ]),
])
def test_tool_exports_a_pretrained_resnet(tmp_path, config, options):
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
        'model.backbone.base_channels=16', 'default_hooks.logger.interval=1',
        *options
    ]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    cmd = [
        sys.executable, TOOL,
        osp.join(REPO, 'configs/ssl', config), '--work-dir',
        str(work_dir)
    ]
    out = run_checked(cmd + ['--cfg-options', *options], REPO, env, 120)
    assert 'loss:' in out  # the logger's loss log
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
