# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""`mim train/test mmdet_joindet` from a regular (non-editable) install.

The package is installed with pip into a scratch folder (so the test
environment's own install is untouched); mim must find the config by name
inside the installed package's ``.mim/configs`` and run its
``.mim/tools/train.py``.
"""
import os
import os.path as osp
import shutil
import sys

import torch

import mmdet_joindet  # noqa: F401  (checkpoint allow-list)
from mmdet_joindet.testing import make_shapes_coco, run_checked

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
CONFIG = 'deformable-detr_r18-tiny_1xb2-2iter_shapes.py'


def test_mim_train_and_test_from_a_regular_install(tmp_path):
    site = tmp_path / 'site'
    src = tmp_path / 'src'
    # Build from a copy of the checkout: the build writes into the tree.
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns('.git', 'data', 'work_dirs', 'build',
                                      '*.egg-info', '.mim', '__pycache__'))
    run_checked([
        sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
        '--no-build-isolation', '--target',
        str(site),
        str(src)
    ],
                cwd=tmp_path,
                env=os.environ.copy())
    installed = site / 'mmdet_joindet'
    assert (installed / '.mim' / 'tools' / 'train.py').is_file()
    assert (installed / '.mim' / 'tools' / 'model_converters' /
            'joindet_to_deformable_detr.py').is_file()  # subfolders too
    assert (installed / '.mim' / 'configs' / 'smoke' / CONFIG).is_file()
    assert not (installed / '.mim' / 'tools').is_symlink()

    make_shapes_coco(str(tmp_path / 'data' / 'shapes'), num_images=4)
    env = dict(os.environ, PYTHONPATH=str(site))
    mim = shutil.which('mim') or 'mim'
    out = run_checked(
        [mim, 'train', 'mmdet_joindet', CONFIG, '--work-dir', 'wd'],
        cwd=tmp_path,
        env=env)
    assert str(installed / '.mim' / 'tools' / 'train.py') in out
    ckpt_path = tmp_path / 'wd' / 'iter_2.pth'
    assert ckpt_path.is_file()
    ckpt = torch.load(ckpt_path)  # weights_only=True
    assert ckpt['meta']['iter'] == 2
    assert any(k.startswith('backbone.') for k in ckpt['state_dict'])

    out = run_checked([
        mim, 'test', 'mmdet_joindet', CONFIG, '--checkpoint',
        str(ckpt_path), '--work-dir', 'wd_test'
    ],
                      cwd=tmp_path,
                      env=env)
    assert 'coco/bbox_mAP' in out

    # The README's main job: JoinDet pretraining, config found by name
    # (its relative _base_ chain resolved inside the installed package).
    out = run_checked([
        mim, 'train', 'mmdet_joindet', 'joindet_r18-tiny_1xb2-3e_shapes.py',
        '--work-dir', 'wd_joindet', '--cfg-options', 'train_cfg.max_epochs=1'
    ],
                      cwd=tmp_path,
                      env=env)
    assert 'prior round 1 (box_smooth)' in out
    ckpt = torch.load(tmp_path / 'wd_joindet' / 'epoch_1.pth')
    assert ckpt['joindet_priors']['round'] == 1
