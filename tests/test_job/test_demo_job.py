# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The main job (tools/joindet.py demo) end to end on tiny proxy data: the
report and its figures, a second run that skips everything, and a stage
killed half-way then resumed, whose report equals the uninterrupted one."""
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import cv2
import pytest

from mmdet_joindet.testing import run_checked

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = [
    '--num-unlabeled', '8', '--num-train', '40', '--num-val', '4',
    '--image-size', '64', '--ssl-iters', '2', '--ssl-batch-size', '4',
    '--pretrain-epochs', '2', '--update-interval', '1', '--finetune-epochs',
    '2', '--batch-size', '4'
]


def demo_cmd(root):
    return [
        sys.executable,
        osp.join(REPO, 'tools/joindet.py'), 'demo', '--work-dir',
        str(root / 'wd'), '--data-root',
        str(root / 'data'), *TINY
    ]


def env():
    return dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')


@pytest.fixture(scope='module')
def job(tmp_path_factory):
    root = tmp_path_factory.mktemp('job')
    out = run_checked(demo_cmd(root), str(root), env(), timeout=900)
    return root, out


def test_report_and_figures(job):
    root, out = job
    report = root / 'wd' / 'report'
    assert out.rstrip().endswith(f'The report is {report}/report.md')
    text = (report / 'report.md').read_text()
    for heading in ('## Detection after finetuning', '## Object priors by '
                    'round', '## What ran'):
        assert heading in text
    for png in ('figure6_priors.png', 'loss_curves.png', 'ap_by_epoch.png'):
        assert f']({png})' in text
        img = cv2.imread(str(report / png))
        assert img is not None and img.shape[0] > 100 and img.std() > 10
    numbers = json.loads((report / 'report.json').read_text())
    assert set(numbers['results']) == {
        'Deformable DETR from JoinDet pretraining',
        'Deformable DETR without detector pretraining (backbone only)'
    }
    for metrics in numbers['results'].values():
        assert 0 <= metrics['coco/bbox_mAP'] <= 1
        assert 'agnostic/AR@100' in metrics
    # R0 and one Box Smooth round after each of the two epochs
    assert [r['round'] for r in numbers['priors']] == [0, 1, 2]
    # each stage's resolved config is in its work dir, ready for mim train
    for stage, name in (('ssl', 'dense_swav.py'), ('pretrain',
                                                   'joindet_pretrain.py'),
                        ('finetune', 'deformable_detr_finetune.py')):
        assert (root / 'wd' / stage / name).is_file()
    # progress with an ETA: mmengine's logger, a bar for the prior pass and
    # one for drawing the data
    assert 'eta:' in out and 'prior update' in out
    data_bar = out[out.index('== proxy data'):out.index('step 2/8')]
    assert '52/52' in data_bar and 'ETA' in data_bar


def test_second_run_skips_every_stage(job):
    root, _ = job
    before = (root / 'wd' / 'report' / 'report.json').read_text()
    out = run_checked(demo_cmd(root), str(root), env(), timeout=300)
    assert out.count('done before') == 8
    assert '$ ' not in out  # no tool ran
    assert (root / 'wd' / 'report' / 'report.json').read_text() == before


def test_killed_stage_resumes_to_the_same_report(job, tmp_path):
    root, _ = job
    # the same job in another folder, every stage before the last training
    # (the finetune without detector pretraining) done; the pretraining's
    # own kill-and-resume is tests/test_engine/test_prior_update_hook.py's
    for stage in ('data', 'ssl', 'pretrain', 'finetune', 'evaluate'):
        shutil.copytree(root / 'wd' / stage, tmp_path / 'wd' / stage)
    shutil.copytree(root / 'data', tmp_path / 'data')
    _rebase(tmp_path / 'wd', str(root), str(tmp_path))
    proc = subprocess.Popen(
        demo_cmd(tmp_path),
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True)
    # mmengine names the checkpoint in ``last_checkpoint`` once it is whole
    # (epoch_1.pth appears, half-written, before): a kill between the two
    # leaves nothing to resume and the stage rightly starts afresh
    first = tmp_path / 'wd' / 'baseline' / 'last_checkpoint'
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.2)
    assert first.exists(), 'the finetune never saved a checkpoint'
    os.killpg(proc.pid, signal.SIGKILL)  # the job and its tool, half-way
    proc.wait()
    assert not (tmp_path / 'wd' / 'baseline' / 'DONE.json').exists()
    out = run_checked(demo_cmd(tmp_path), str(tmp_path), env(), timeout=600)
    assert f'resuming finetune from {tmp_path}/wd/baseline' in out
    assert json.loads(
        (tmp_path / 'wd' / 'report' / 'report.json').read_text()) == \
        json.loads((root / 'wd' / 'report' / 'report.json').read_text())


def _rebase(folder, old, new):
    """Point the copied stages' records at their new folder."""
    for dirpath, _, files in os.walk(folder):
        for name in files:
            if name == 'DONE.json' or name.endswith('.py'):
                path = osp.join(dirpath, name)
                with open(path) as f:
                    text = f.read()
                with open(path, 'w') as f:
                    f.write(text.replace(old, new))
