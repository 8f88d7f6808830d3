# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Your own images in three commands (plus the optional backbone stage),
on tiny generated data, and the clear errors of the common mistakes."""
import json
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
import pytest
import torch

from mmdet_joindet.job import checks
from mmdet_joindet.job import own_data as job
from mmdet_joindet.testing import make_shapes_coco, run_checked

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def cli(cwd, *args, ok=True):
    cmd = [sys.executable, osp.join(REPO, 'tools/joindet.py'), *args]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    if ok:
        return run_checked(cmd, str(cwd), env, timeout=600)
    import subprocess
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    return proc.stderr


def snapshot(folder):
    """Every file under ``folder`` with its size and modification time."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = osp.join(dirpath, name)
            st = os.stat(path)
            out[osp.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """A folder of unlabeled images and labeled train / val jsons."""
    root = tmp_path_factory.mktemp('own')
    make_shapes_coco(str(root / 'unlabeled'), num_images=8, seed=1)
    make_shapes_coco(str(root / 'train'), num_images=12, seed=2)
    make_shapes_coco(str(root / 'val'), num_images=4, seed=3)
    return root


@pytest.fixture(scope='module')
def pipeline(data):
    """The four commands, as a user runs them."""
    out = {}
    out['ssl'] = cli(data, 'ssl', '--images', 'unlabeled/images', '--work-dir',
                     'runs/ssl', '--iters', '2', '--batch-size', '4')
    out['pretrain'] = cli(data, 'pretrain', '--images', 'unlabeled/images',
                          '--work-dir', 'runs/pretrain', '--backbone',
                          'runs/ssl/backbone.pth', '--image-size', '64',
                          '--epochs', '1', '--update-interval', '1',
                          '--batch-size', '4')
    out['finetune'] = cli(data, 'finetune', '--pretrained', 'runs/pretrain',
                          '--train-json', 'train/annotations.json', '--images',
                          'train/images', '--val-json', 'val/annotations.json',
                          '--val-images', 'val/images', '--split-percent',
                          '50', '--work-dir', 'runs/finetune', '--epochs', '2',
                          '--batch-size', '4')
    out['evaluate'] = cli(data, 'evaluate', '--finetuned', 'runs/finetune',
                          '--work-dir', 'runs/evaluate', '--num-vis', '2')
    return out


def test_three_commands_and_the_backbone_stage(data, pipeline):
    runs = data / 'runs'
    assert (runs / 'ssl' / 'backbone.pth').is_file()
    pre = runs / 'pretrain'
    assert sorted(os.listdir(
        pre / 'priors'))[:3] == ['CURRENT', 'round_0000', 'round_0001']
    assert (pre / 'joindet_pretrain.py').is_file()
    cfg = (pre / 'joindet_pretrain.py').read_text()
    assert str(data / 'unlabeled' / 'images') in cfg  # absolute paths
    ft = runs / 'finetune'
    assert (ft / 'joindet_converted.pth').is_file()
    # the kit's split: 50% of 12 images, without replacement
    split = json.loads((ft / 'annotations.1@50.json').read_text())
    assert len(split['images']) == 6
    log = pipeline['finetune']
    assert 'every tensor fits the model' in log  # LoadFromCheckHook
    assert 'unexpected key' not in log
    ev = runs / 'evaluate'
    assert 'coco/bbox_mAP' in pipeline['evaluate']
    assert 'agnostic/AR@100' in pipeline['evaluate']
    img = cv2.imread(str(ev / 'predictions.png'))
    assert img is not None and img.std() > 10


def test_rerun_skips_the_finished_command(data, pipeline):
    out = cli(data, 'evaluate', '--finetuned', 'runs/finetune', '--work-dir',
              'runs/evaluate')
    assert 'done before' in out and '$ ' not in out


def test_two_processes_evaluate_as_one(data, pipeline):
    """``--nproc 2``: the stage runs on two gloo processes
    (torch.distributed.run, as tools/dist_test.sh) and its metrics, gathered
    across the ranks, equal the one-process evaluation's."""
    out = cli(data, '--nproc', '2', 'evaluate', '--finetuned', 'runs/finetune',
              '--work-dir', 'runs/evaluate_2proc', '--num-vis', '0')
    assert 'torch.distributed.run --nproc_per_node=2' in out
    assert 'env_cfg.dist_cfg.backend=gloo' in out
    from mmdet_joindet.job.report import test_metrics
    runs = data / 'runs'
    assert test_metrics(str(runs / 'evaluate_2proc')) == test_metrics(
        str(runs / 'evaluate'))
    assert not (runs / 'evaluate_2proc' / 'predictions.png').exists()


# -- the common mistakes: a clear error, nothing written before is lost --


def test_missing_empty_and_wrong_folders(tmp_path):
    with pytest.raises(checks.JobInputError, match='does not exist'):
        checks.unlabeled_images(str(tmp_path / 'nope'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(checks.JobInputError, match='the folder is empty'):
        checks.unlabeled_images(str(tmp_path / 'empty'))
    (tmp_path / 'gifs').mkdir()
    (tmp_path / 'gifs' / 'a.gif').write_bytes(b'GIF89a')
    (tmp_path / 'gifs' / 'notes.txt').write_text('x')
    with pytest.raises(
            checks.JobInputError,
            match=r'no image with a known extension.*\.gif'):
        checks.unlabeled_images(str(tmp_path / 'gifs'))


def test_unreadable_images_are_counted_then_refused(tmp_path):
    folder = tmp_path / 'imgs'
    folder.mkdir()
    img = np.full((32, 32, 3), 128, np.uint8)
    for i in range(30):
        cv2.imwrite(str(folder / f'{i:02d}.png'), img)
    good = (folder / '00.png').read_bytes()
    (folder / '05.png').write_bytes(good[:len(good) // 2])  # truncated
    paths = sorted(str(p) for p in folder.iterdir())
    bad = checks.check_readable(paths, max_bad_share=0.05)
    assert bad == [(str(folder / '05.png'), 'truncated PNG (no IEND chunk)')]
    for i in range(1, 4):
        (folder / f'{i:02d}.png').write_bytes(b'not an image')
    with pytest.raises(
            checks.JobInputError, match=r'4 of 30 images cannot be read .*5%'):
        checks.check_readable(paths, max_bad_share=0.05)


def test_labeled_json_mistakes(data, tmp_path):
    coco = json.loads((data / 'train' / 'annotations.json').read_text())
    images = str(data / 'train' / 'images')
    missing = dict(
        coco,
        images=coco['images'] +
        [dict(id=999, file_name='gone.png', width=10, height=10)])
    path = tmp_path / 'missing.json'
    path.write_text(json.dumps(missing))
    with pytest.raises(
            checks.JobInputError,
            match=r'1 of the 13 images .* are not under .*'
            'gone.png'):
        checks.check_labeled_json(str(path), images)
    outside = json.loads(json.dumps(coco))
    outside['annotations'][0]['bbox'] = [-30, 0, 10, 10]
    path = tmp_path / 'outside.json'
    path.write_text(json.dumps(outside))
    with pytest.raises(
            checks.JobInputError, match='lies outside its .* image'):
        checks.check_labeled_json(str(path), images)
    other = json.loads(json.dumps(coco))
    other['categories'][1]['id'] = 7
    with pytest.raises(checks.JobInputError, match='categories of .* differ'):
        checks.check_same_categories(coco, other, 'train.json', 'val.json')


def test_finetune_mistakes_leave_the_pretraining_alone(data, pipeline,
                                                       tmp_path):
    pre = data / 'runs' / 'pretrain'
    before = snapshot(pre)
    common = dict(
        val_json=str(data / 'val' / 'annotations.json'),
        work_dir=str(tmp_path / 'ft'),
        images=str(data / 'train' / 'images'),
        val_images=str(data / 'val' / 'images'))
    # not a JoinDet pretraining (nor converted)
    other = tmp_path / 'other.pth'
    torch.save(
        dict(state_dict={'backbone.conv1.weight': torch.ones(1)}), other)
    with pytest.raises(
            checks.JobInputError,
            match='neither a JoinDet pretraining checkpoint'):
        checks.checkpoint_kind(str(other))
    # fewer labeled images than one batch
    with pytest.raises(
            checks.JobInputError, match='fewer than one batch of 64'):
        job.finetune(
            str(pre),
            str(data / 'train' / 'annotations.json'),
            batch_size=64,
            **common)
    # a GPU asked for on a machine without one
    if not torch.cuda.is_available():
        with pytest.raises(checks.JobInputError, match='--device cpu'):
            job.finetune(
                str(pre),
                str(data / 'train' / 'annotations.json'),
                device='cuda',
                **common)
    assert snapshot(pre) == before
    assert not osp.exists(tmp_path / 'ft' / 'DONE.json')


def test_pretrain_mistakes_refused_before_anything_runs(data, tmp_path):
    few = tmp_path / 'few'
    few.mkdir()
    for i in range(3):
        shutil.copy(data / 'unlabeled' / 'images' / f'00000{i}.png', few)
    work = tmp_path / 'pre'
    work.mkdir()
    (work / 'keep.txt').write_text('earlier work')
    with pytest.raises(
            checks.JobInputError, match='3 images, fewer than one batch of 8'):
        job.pretrain(str(few), str(work), backbone='none')
    with pytest.raises(checks.JobInputError, match='has no public weights'):
        job.pretrain(str(few), str(work))
    assert snapshot(work).keys() == {'keep.txt'}
    err = cli(
        tmp_path,
        'pretrain',
        '--images',
        str(tmp_path / 'nope'),
        '--work-dir',
        str(work),
        '--backbone',
        'none',
        ok=False)
    assert err.startswith('joindet.py pretrain: error:') and \
        'does not exist' in err
    assert 'Traceback' not in err


def test_a_checkpoint_that_does_not_fit_is_refused(data, pipeline, tmp_path):
    """A converted checkpoint of another model size: LoadFromCheckHook
    stops the run before a silently partial load."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    ft = data / 'runs' / 'finetune'
    cfg = Config.fromfile(str(ft / 'deformable_detr_finetune.py'))
    cfg.model.num_queries = 7  # was 30: the query embedding differs
    cfg.model.test_cfg.max_per_img = 7
    cfg.work_dir = str(tmp_path / 'wd')
    cfg.train_cfg.max_epochs = 1
    runner = Runner.from_cfg(cfg)
    with pytest.raises(
            ValueError,
            match=r'does not fit this model: .*'
            r'query_embedding.weight: checkpoint \(30, 128\), '
            r'model \(7, 128\)'):
        runner.train()
    assert not list((tmp_path / 'wd').glob('epoch_*.pth'))
