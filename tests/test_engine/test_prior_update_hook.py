# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The pretraining loop end to end: R0, rounds, checkpoints, resume, DDP.

Runs tools/train.py (one process, and two gloo processes) on the tiny
JoinDet config over a handful of generated images.
"""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import mmdet_joindet  # noqa: F401  (checkpoint allow-list)
from mmdet_joindet.datasets import PriorStore
from mmdet_joindet.testing import make_shapes_coco, run_checked

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
CONFIG = osp.join(REPO, 'configs/joindet/joindet_r18-tiny_1xb2-3e_shapes.py')
# Deterministic epochs (no flip, no dropout, no crop jitter), so that a
# resumed epoch repeats the uninterrupted one exactly: mmengine does not
# checkpoint random number generators.
DETERMINISTIC = [
    'randomness.seed=0',
    'train_dataloader.dataset.pipeline.2.prob=0.0',
    'model.crop_jitter=None',
    'model.encoder.layer_cfg.self_attn_cfg.dropout=0.0',
    'model.encoder.layer_cfg.ffn_cfg.ffn_drop=0.0',
    'model.decoder.layer_cfg.self_attn_cfg.dropout=0.0',
    'model.decoder.layer_cfg.cross_attn_cfg.dropout=0.0',
    'model.decoder.layer_cfg.ffn_cfg.ffn_drop=0.0',
]


def train(cwd, work_dir, *options, nproc=1, timeout=600):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    if nproc == 1:
        cmd = [sys.executable, osp.join(REPO, 'tools/train.py')]
    else:
        cmd = [
            sys.executable, '-m', 'torch.distributed.run',
            f'--nproc_per_node={nproc}', '--master_port=29517',
            osp.join(REPO, 'tools/train.py')
        ]
    cmd += [CONFIG, '--work-dir', str(work_dir)]
    if nproc > 1:
        cmd += ['--launcher', 'pytorch']
    cmd += ['--cfg-options', *DETERMINISTIC, *options]
    return run_checked(cmd, cwd, env, timeout)


def rounds_equal(a, b):
    return (np.array_equal(a.offsets, b.offsets)
            and np.allclose(a.boxes, b.boxes, atol=1e-3)
            and np.allclose(a.scores, b.scores, atol=1e-4))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """An uninterrupted 3-epoch run (priors updated after every epoch)."""
    root = tmp_path_factory.mktemp('e2e')
    make_shapes_coco(str(root / 'data' / 'shapes'), num_images=7)
    out = train(root, root / 'wd')
    return root, out


def test_rounds_advance_and_checkpoints_hold_the_state(run):
    root, out = run
    store = PriorStore(str(root / 'wd' / 'priors'))
    assert store.rounds() == [0, 1, 2, 3] and store.current_round() == 3
    assert 'prior round 0 (R0)' in out and 'prior round 3 (box_smooth)' in out
    rounds = [store.load(i) for i in range(4)]
    assert all(r.num_images == 7 for r in rounds)
    assert all(len(r.boxes) <= 7 * 10 for r in rounds)  # max_priors=10
    # the priors change from round to round
    for a, b in zip(rounds, rounds[1:]):
        assert not rounds_equal(a, b)
    for epoch in (1, 2, 3):
        ckpt = torch.load(root / 'wd' / f'epoch_{epoch}.pth')
        state = ckpt['joindet_priors']
        assert state['round'] == epoch
        assert state['root'] == str(root / 'wd' / 'priors')
        assert [h['round'] for h in state['history']] == list(range(epoch + 1))
        # the store's own state, which resume hands back to the store
        assert state['store'] == dict(
            root=str(root / 'wd' / 'priors'),
            current_round=epoch,
            rounds=list(range(epoch + 1)),
            fingerprint=store.load(epoch).meta['fingerprint'])


def test_resume_reproduces_the_next_round(run, tmp_path):
    root, _ = run
    work = tmp_path / 'wd'
    shutil.copytree(root / 'wd', work)
    store = PriorStore(str(work / 'priors'))
    uninterrupted = store.load(3)
    expected = (uninterrupted.offsets.copy(), uninterrupted.boxes.copy(),
                uninterrupted.scores.copy())
    del uninterrupted
    out = train(root, work, '--resume', str(work / 'epoch_2.pth'))
    assert 'resumed at round 2' in out
    again = store.load(3)
    assert np.array_equal(again.offsets, expected[0])
    np.testing.assert_allclose(again.boxes, expected[1], atol=1e-3)
    np.testing.assert_allclose(again.scores, expected[2], atol=1e-4)


def test_load_from_leaves_the_store_alone(run, tmp_path):
    root, _ = run
    store = PriorStore(str(root / 'wd' / 'priors'))
    before = {i: store.load(i).boxes.copy() for i in store.rounds()}
    out = train(root, tmp_path / 'fresh', 'train_cfg.max_epochs=1',
                f'load_from={root}/wd/epoch_2.pth')
    assert 'prior round 0 (R0)' in out  # a new store of its own
    for i, boxes in before.items():
        np.testing.assert_array_equal(store.load(i).boxes, boxes)
    assert store.current_round() == 3


def test_two_gloo_processes_match_one(run, tmp_path):
    """Uneven shards (7 images on 2 ranks); the round the two ranks commit
    equals a single-process update pass with the same weights."""
    root, _ = run
    out = train(
        root,
        tmp_path / 'ddp',
        'train_cfg.max_epochs=2',
        'env_cfg.dist_cfg.backend=gloo',
        nproc=2)
    assert 'identical on 2 ranks' in out
    store = PriorStore(str(tmp_path / 'ddp' / 'priors'))
    assert store.rounds() == [0, 1, 2]

    # Recompute round 2 in this process from the epoch-2 weights and the
    # committed round 1.
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.dataset import Compose  # noqa: F401
    from mmengine.runner import load_checkpoint

    from mmdet_joindet.datasets import SelfSupervisedDataset
    from mmdet_joindet.engine.prior_inference import infer_priors
    from mmdet_joindet.priors import update_priors
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(CONFIG)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        model = MODELS.build(cfg.model)
        load_checkpoint(model, str(tmp_path / 'ddp' / 'epoch_2.pth'))
        data_cfg = cfg.train_dataloader.dataset.copy()
        data_cfg.pop('type')
        dataset = SelfSupervisedDataset(**data_cfg)
        hook_cfg = cfg.custom_hooks[0]
        found = infer_priors(
            model,
            dataset.test_dataset(hook_cfg.infer_pipeline),
            len(dataset),
            batch_size=1)  # the hook's default
    finally:
        os.chdir(cwd)
    prev = store.load(1)
    committed = store.load(2)
    for i in range(7):
        b, s = update_priors(
            tuple(map(torch.from_numpy, prev.get(i))), found[i][1:],
            'box_smooth', 0.45, 0.55, hook_cfg.max_priors)
        cb, cs = committed.get(i)
        np.testing.assert_allclose(b, cb, atol=1e-3)
        np.testing.assert_allclose(s, cs, atol=1e-4)


KILLABLE = '''
import runpy, sys, time
from mmdet_joindet.datasets import prior_round
fsync_dir = prior_round.fsync_dir
def slow(path):
    if '.round_0002.tmp' in path:
        time.sleep(600)  # killed here, with round 2 half written
    fsync_dir(path)
prior_round.fsync_dir = slow
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def test_killed_while_writing_a_round_then_resumed(tmp_path):
    import signal
    import time
    make_shapes_coco(str(tmp_path / 'data' / 'shapes'), num_images=5)
    driver = tmp_path / 'killable.py'
    driver.write_text(KILLABLE)
    work = tmp_path / 'wd'
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.Popen([
        sys.executable,
        str(driver),
        osp.join(REPO, 'tools/train.py'), CONFIG, '--work-dir',
        str(work), '--cfg-options', *DETERMINISTIC
    ],
                            cwd=tmp_path,
                            env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while not list((work / 'priors').glob('.round_0002.tmp*')):
            assert proc.poll() is None, 'training ended before the kill'
            assert time.time() < deadline, 'round 2 never started'
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    store = PriorStore(str(work / 'priors'))
    assert store.current_round() == 1
    assert store.load().num_images == 5  # the committed round is intact
    assert not (work / 'epoch_2.pth').exists()
    out = train(tmp_path, work, '--resume')  # from the last checkpoint
    assert 'removed unfinished prior round' in out
    # each update pass says how many priors each part of R_n gave
    assert re.search(
        r'prior update: 5 images on rank 0 .* region \d+\.\d\d/img, '
        r'instance \d+\.\d\d/img, predictions \d+\.\d\d/img', out)
    assert 'resumed at round 1' in out
    assert store.rounds() == [0, 1, 2, 3] and store.current_round() == 3
    assert not list((work / 'priors').glob('.*tmp*'))


def test_compute_r0_tool(tmp_path):
    make_shapes_coco(str(tmp_path / 'data' / 'shapes'), num_images=3)
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools/compute_r0.py'), CONFIG, '--work-dir', 'wd'
    ]
    out = run_checked(cmd, str(tmp_path), env)
    assert 'R0: 3 images on rank 0' in out and 'img/s' in out
    store = PriorStore(str(tmp_path / 'wd' / 'priors'))
    assert store.rounds() == [0] and store.current_round() == 0
    again = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode != 0
    assert 'already holds round 0' in again.stderr


def test_r0_from_an_image_generator(tmp_path):
    """R0 made by selective search on the unresized images (an option past
    the paper) equals the generator run on each image file."""
    import cv2
    from mmdet.registry import TASK_UTILS
    from mmengine.config import Config
    from mmengine.runner import Runner
    make_shapes_coco(str(tmp_path / 'data' / 'shapes'), num_images=3)
    cfg = Config.fromfile(CONFIG)
    generator = dict(
        type='SelectiveSearchPriorGenerator', seed=1, max_priors=10)
    cfg.custom_hooks[0].r0_generator = generator
    cfg.custom_hooks[0].mode = 'fixed'
    cfg.train_cfg.max_epochs = 1
    cfg.train_dataloader.dataset.dataset.data_root = str(
        tmp_path / 'data' / 'shapes') + '/'
    cfg.work_dir = str(tmp_path / 'wd')
    Runner.from_cfg(cfg).train()
    store = PriorStore(str(tmp_path / 'wd' / 'priors'))
    loaded = store.load(0)
    assert loaded.info['mode'] == 'R0 SelectiveSearchPriorGenerator'
    reference = TASK_UTILS.build(generator)
    images = sorted((tmp_path / 'data' / 'shapes' / 'images').iterdir())
    for i, path in enumerate(images):
        want = reference.generate([cv2.imread(str(path))])[0].bboxes
        boxes, _ = loaded.get(i)
        assert len(boxes) == len(want) > 0
        np.testing.assert_allclose(boxes, want.numpy(), atol=1e-4)


def test_r0_generator_must_read_images():
    from mmdet_joindet.engine.hooks import PriorUpdateHook
    with pytest.raises(TypeError, match='prior generator of images'):
        PriorUpdateHook(
            infer_pipeline=[
                dict(type='PackDetInputs', meta_keys=('prior_index', ))
            ],
            r0_generator=dict(type='EigenRegionPriorGenerator'))
