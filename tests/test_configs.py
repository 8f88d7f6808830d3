# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Every config a user can name parses and builds its model."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
    if '_base_' not in p)


def test_the_configs_are_found():
    for family in ('joindet', 'smoke', 'ssl'):
        assert any(p.startswith(f'configs/{family}/') for p in CONFIGS)
    assert 'configs/ssl/dense-swav_r18_1xgpu_proxy-unlabeled.py' in CONFIGS


@pytest.mark.parametrize('path', CONFIGS)
def test_config_parses_and_builds_its_model(path):
    cfg = Config.fromfile(osp.join(REPO, path))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    assert cfg.train_dataloader.batch_size > 0
    model = MODELS.build(cfg.model)  # weights are not loaded: no download
    assert sum(p.numel() for p in model.parameters()) > 0
