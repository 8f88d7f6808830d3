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
from mmdet_joindet.utils import export_backbone_checkpoint

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
TOOL = osp.join(REPO, 'tools/train_ssl_backbone.py')


def unlabeled_images(root) -> str:
    """Six random images of 40-60 x 48 px and their ``unlabeled.json``."""
    images = []
    rng = np.random.default_rng(0)
    os.makedirs(root / 'data/images')
    for i in range(6):
        img = rng.integers(0, 255, (40 + 4 * i, 48, 3), dtype=np.uint8)
        cv2.imwrite(str(root / f'data/images/{i}.png'), img)
        images.append(dict(id=i, file_name=f'{i}.png'))
    (root / 'data/unlabeled.json').write_text(json.dumps(dict(images=images)))
    return f'{root}/data/'


def train(config, work_dir, data_root, options, *args, nproc=1, tool=TOOL):
    """Run ``tool`` (``nproc`` gloo processes) on the tiny settings."""
    options = [
        f'train_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_dataloader.dataset.pipeline.1.size=32',
        'model.backbone.base_channels=16', 'default_hooks.logger.interval=1',
        *options
    ]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    cmd = [sys.executable, tool]
    if nproc > 1:
        cmd = [
            sys.executable, '-m', 'torch.distributed.run',
            f'--nproc_per_node={nproc}', '--master_port=29533', tool
        ]
        args = (*args, '--launcher', 'pytorch')
    cmd += [
        osp.join(REPO, 'configs/ssl', config), '--work-dir',
        str(work_dir), *args, '--cfg-options', *options
    ]
    return run_checked(cmd, REPO, env, 240)


TINY = {
    'dense-swav_r18_proxy-unlabeled.py': [
        'model.view_size=32', 'model.hidden_channels=32',
        'model.out_channels=16', 'model.num_prototypes=8'
    ],
}


@pytest.mark.parametrize('config, options, tool',
                         [(*item, TOOL) for item in TINY.items()] +
                         [('dense-swav_r18_proxy-unlabeled.py',
                           TINY['dense-swav_r18_proxy-unlabeled.py'],
                           osp.join(REPO, 'tools/train.py'))])
def test_tool_exports_a_pretrained_resnet(tmp_path, config, options, tool):
    """The tool adds ExportBackboneHook to a config without it; through
    tools/train.py (what ``mim train`` runs) the configs' own hook writes
    the same file."""
    work_dir = tmp_path / 'work'
    if tool == TOOL:
        options = [*options, 'custom_hooks=[]']
    out = train(
        config,
        work_dir,
        unlabeled_images(tmp_path), ['train_cfg.max_iters=3', *options],
        tool=tool)
    assert 'backbone weights written to' in out
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
    # the same weights from the runner checkpoint, all a run stopped before
    # its end leaves behind
    again = export_backbone_checkpoint(
        str(work_dir / 'iter_3.pth'), str(tmp_path / 'again.pth'))
    assert again['iter'] == 3
    rebuilt = torch.load(tmp_path / 'again.pth')
    assert list(rebuilt['state_dict']) == list(exported['state_dict'])
    for key, value in exported['state_dict'].items():
        assert torch.equal(rebuilt['state_dict'][key], value), key


@pytest.mark.parametrize('config', TINY)
def test_two_processes_then_resume(tmp_path, config):
    """Two gloo processes train 2 iterations; ``--resume`` (one process)
    goes on from their checkpoint to 4 with the weights it saved."""
    data_root = unlabeled_images(tmp_path)
    work_dir = tmp_path / 'work'
    options = [*TINY[config], 'default_hooks.checkpoint.interval=2']
    out = train(
        config,
        work_dir,
        data_root, ['train_cfg.max_iters=2', *options],
        nproc=2)
    assert 'Iter(train) [2/2]' in out
    assert torch.load(work_dir / 'backbone.pth')['meta']['iter'] == 2
    at_2 = torch.load(work_dir / 'iter_2.pth')['state_dict']
    out = train(config, work_dir, data_root,
                ['train_cfg.max_iters=4', *options], '--resume')
    assert 'resumed epoch: 0, iter: 2' in out
    assert 'Iter(train) [3/4]' in out and 'Iter(train) [1/4]' not in out
    assert torch.load(work_dir / 'backbone.pth')['meta']['iter'] == 4
    at_4 = torch.load(work_dir / 'iter_4.pth')['state_dict']
    assert at_2.keys() == at_4.keys()
    assert any(not torch.equal(at_2[k], at_4[k]) for k in at_2
               if at_2[k].is_floating_point())
    assert not [f for f in os.listdir(work_dir) if f.endswith('.tmp')]
