# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Runner checkpoints load under weights_only=True; malicious pickles don't.
"""
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint

import mmdet_joindet  # noqa: F401  (installs the allow-list)

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=(out - 1).pow(2).mean())
        return out


class ToyDataset(torch.utils.data.Dataset):
    metainfo = dict()

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(2, generator=g))


def build_runner(work_dir, max_iters, **kwargs):
    return Runner(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        randomness=dict(seed=0),
        # as this project's configs; the default, 'mmengine', would stay
        # the current scope and hide mmdet's registries from later tests
        default_scope='mmdet',
        experiment_name=f'exp{max_iters}_{len(kwargs)}',
        **kwargs)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('run'))
    runner = build_runner(work_dir, max_iters=4)
    runner.train()
    return runner, osp.join(work_dir, 'iter_2.pth')


def test_checkpoint_needs_the_allow_list(runner_checkpoint):
    """Without the plugin, torch >= 2.6 refuses mmengine's checkpoints."""
    _, path = runner_checkpoint
    # Allow-listed in this process, so nothing is reported unsafe here.
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    code = ('import sys, torch; torch.load(sys.argv[1]); '
            'print("loaded")')
    bare = subprocess.run([sys.executable, '-c', code, path],
                          capture_output=True,
                          text=True)
    assert bare.returncode != 0 and 'HistoryBuffer' in bare.stderr
    code = 'import mmdet_joindet; ' + code
    ok = subprocess.run([sys.executable, '-c', code, path],
                        capture_output=True,
                        text=True,
                        cwd=REPO)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert 'loaded' in ok.stdout


def test_resume_and_load_from(runner_checkpoint, tmp_path):
    first, path = runner_checkpoint
    ckpt = torch.load(path)  # weights_only=True, the default
    assert ckpt['meta']['iter'] == 2
    hub = ckpt['message_hub']['log_scalars']
    assert isinstance(hub['train/loss'], HistoryBuffer)
    assert hub['train/loss'].statistics('mean') == pytest.approx(
        float(hub['train/loss'].data[0].mean()))

    # Resume: continues from iteration 2 with that checkpoint's weights
    # and optimizer state, then trains to the end.
    second = build_runner(
        str(tmp_path), max_iters=4, resume=True, load_from=path)
    second.load_or_resume()
    assert second.iter == 2
    torch.testing.assert_close(second.model.linear.weight,
                               ckpt['state_dict']['linear.weight'])
    second.train()
    assert second.iter == 4
    # Same seed, same data order: the resumed run ends where the
    # uninterrupted one did.
    torch.testing.assert_close(second.model.linear.weight,
                               first.model.linear.weight)

    # load_from (no resume) and mmengine's load_checkpoint.
    third = build_runner(str(tmp_path / 'lf'), max_iters=4, load_from=path)
    third.load_or_resume()
    assert third.iter == 0
    model = ToyModel()
    load_checkpoint(model, path)
    torch.testing.assert_close(model.linear.weight,
                               ckpt['state_dict']['linear.weight'])


class RunsCommand:
    """Unpickling this runs a shell command (what an attacker would ship)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class ReachesPastHistoryBuffer:
    """Uses the allow-listed getattr to step outside HistoryBuffer's API."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_malicious_pickles_are_refused(tmp_path):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, payload=RunsCommand(marker)), evil)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(evil)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        load_checkpoint(ToyModel(), str(evil))
    runner = build_runner(
        str(tmp_path / 'r'), max_iters=2, resume=True, load_from=str(evil))
    with pytest.raises(pickle.UnpicklingError, match='system'):
        runner.load_or_resume()
    assert not marker.exists()

    sneaky = tmp_path / 'sneaky.pth'
    torch.save(dict(payload=ReachesPastHistoryBuffer()), sneaky)
    with pytest.raises(
            pickle.UnpicklingError,
            match=r"refused getattr\(HistoryBuffer, '__init__'\)"):
        torch.load(sneaky)
