# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""tools/model_converters/ssl_to_backbone.py: a runner checkpoint's
backbone as ExportBackboneHook's file (the tool on real training runs:
tests/test_tools/test_train_ssl_backbone.py)."""
import os
import os.path as osp
import sys

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.logging import MessageHub

from mmdet_joindet.testing import run_checked
from mmdet_joindet.utils import export_backbone_checkpoint

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
TOOL = osp.join(REPO, 'tools/model_converters/ssl_to_backbone.py')


def runner_like_checkpoint(path, with_meta=True):
    """A tiny ResNet under ``backbone.`` plus a head, saved as mmengine's
    runner saves (``meta``, ``state_dict``, ``message_hub``,
    ``optimizer``); returns the backbone's state dict."""
    torch.manual_seed(0)
    net = ResNet(depth=18, base_channels=8, init_cfg=None)
    head = torch.nn.Linear(64, 4)
    state = {f'backbone.{k}': v for k, v in net.state_dict().items()}
    state.update({f'heads.0.{k}': v for k, v in head.state_dict().items()})
    optim = torch.optim.AdamW(list(net.parameters()) + list(head.parameters()))
    ckpt = dict(
        state_dict=state,
        message_hub=MessageHub.get_instance('ssl_to_backbone').state_dict(),
        optimizer=optim.state_dict())
    if with_meta:
        ckpt['meta'] = dict(iter=7, epoch=0)
    torch.save(ckpt, path)
    return net.state_dict()


def test_cli_writes_what_resnet_loads_with_every_key(tmp_path):
    src, dst = tmp_path / 'iter_7.pth', tmp_path / 'out' / 'backbone.pth'
    expected = runner_like_checkpoint(src)
    cmd = [sys.executable, TOOL, str(src), str(dst)]
    out = run_checked(cmd, REPO, dict(os.environ, PYTHONPATH=REPO), 120)
    assert f'{len(expected)} backbone keys (iteration 7)' in out
    written = torch.load(dst)
    assert written['meta']['exported_from'] == 'iter_7.pth'
    assert written['meta']['iter'] == 7
    net = ResNet(
        depth=18,
        base_channels=8,
        init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    net.init_weights()
    assert list(written['state_dict']) == list(expected)
    for key, value in net.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_bare_state_dict_has_no_iteration(tmp_path):
    src = tmp_path / 'bare.pth'
    expected = runner_like_checkpoint(src, with_meta=False)
    torch.save(torch.load(src)['state_dict'], src)
    summary = export_backbone_checkpoint(str(src), str(tmp_path / 'b.pth'))
    assert summary['iter'] is None
    assert summary['keys'] == len(expected)


def test_refuses_what_it_cannot_export(tmp_path, capsys):
    src = tmp_path / 'iter_7.pth'
    runner_like_checkpoint(src)
    exported = tmp_path / 'backbone.pth'
    export_backbone_checkpoint(str(src), str(exported))
    before = exported.read_bytes()
    with pytest.raises(ValueError, match='already exported'):
        export_backbone_checkpoint(str(exported), str(tmp_path / 'x.pth'))
    with pytest.raises(ValueError, match='is the input checkpoint'):
        export_backbone_checkpoint(str(exported), str(exported))
    assert exported.read_bytes() == before
    torch.save([1, 2], tmp_path / 'list.pth')
    with pytest.raises(ValueError, match='expected an mmengine checkpoint'):
        export_backbone_checkpoint(
            str(tmp_path / 'list.pth'), str(tmp_path / 'y.pth'))
    assert not (tmp_path / 'x.pth').exists()
    assert not (tmp_path / 'y.pth').exists()
