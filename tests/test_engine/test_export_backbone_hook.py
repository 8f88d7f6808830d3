# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""ExportBackboneHook: what it writes, what it refuses, and an earlier
export left whole when writing fails (the end-to-end runs:
``tests/test_tools/test_train_ssl_backbone.py``)."""
import logging
import os
from types import SimpleNamespace

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.registry import HOOKS
from mmengine.config import Config
from torch import nn

import mmdet_joindet  # noqa: F401
from mmdet_joindet.engine.hooks import ExportBackboneHook

BACKBONE = dict(type='ResNet', depth=18, base_channels=8, init_cfg=None)


class WithBackbone(nn.Module):

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = ResNet(depth=18, base_channels=8)
        self.head = nn.Linear(2, 2)


def fake_runner(tmp_path, model):
    return SimpleNamespace(
        model=model,
        cfg=Config(dict(model=dict(backbone=BACKBONE))),
        work_dir=str(tmp_path),
        iter=7,
        logger=logging.getLogger('test_export_backbone_hook'))


def test_writes_the_backbone_for_pretrained_init(tmp_path):
    hook = HOOKS.build(dict(type='ExportBackboneHook'))
    model = WithBackbone()
    runner = fake_runner(tmp_path, model)
    hook.before_train(runner)
    hook.after_train(runner)
    saved = torch.load(tmp_path / 'backbone.pth')
    assert saved['meta']['iter'] == 7
    assert saved['meta']['ssl_method'] == 'WithBackbone'
    assert saved['meta']['backbone'] == BACKBONE
    net = ResNet(
        depth=18,
        base_channels=8,
        init_cfg=dict(
            type='Pretrained', checkpoint=str(tmp_path / 'backbone.pth')))
    net.init_weights()
    expected = model.backbone.state_dict()
    assert set(net.state_dict()) == set(expected)
    for key, value in net.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert os.listdir(tmp_path) == ['backbone.pth']


def test_refuses_bad_names_and_models_without_backbone(tmp_path):
    for name in ('', 'sub/backbone.pth', '../backbone.pth'):
        with pytest.raises(ValueError, match='file name without folders'):
            ExportBackboneHook(filename=name)
    with pytest.raises(TypeError, match='needs a model with a `backbone`'):
        ExportBackboneHook().before_train(
            fake_runner(tmp_path, nn.Linear(2, 2)))


def test_a_failed_write_keeps_the_earlier_export(tmp_path, monkeypatch):
    hook = ExportBackboneHook()
    runner = fake_runner(tmp_path, WithBackbone())
    first = hook.export(runner)
    before = open(first, 'rb').read()

    def broken_save(obj, path, *args, **kwargs):
        with open(path, 'wb') as f:
            f.write(b'half')
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', broken_save)
    runner.iter = 8
    with pytest.raises(OSError, match='disk full'):
        hook.export(runner)
    assert open(first, 'rb').read() == before
    assert os.listdir(tmp_path) == ['backbone.pth']
