# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""``tools/misc/split_low_data.py``: exact, duplicate-free, reproducible
low-data splits, and DETReg's draw."""
import hashlib
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest

from mmdet_joindet.datasets import draw_labeled_ids, split_coco_dict
from mmdet_joindet.testing import run_checked

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
TOOL = osp.join(REPO, 'tools', 'misc', 'split_low_data.py')
sys.path.insert(0, osp.dirname(TOOL))
import split_low_data  # noqa: E402


@pytest.fixture
def coco_file(tmp_path):
    """A COCO json of 1,003 images, ids scattered and not in order, 0-3
    boxes each, with info / licenses / categories."""
    rng = np.random.default_rng(0)
    ids = rng.choice(10**6, 1003, replace=False)
    images = [
        dict(id=int(i), file_name=f'{i:07d}.jpg', height=64, width=64)
        for i in ids
    ]
    anns = []
    for im in images:
        for _ in range(int(rng.integers(0, 4))):
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=im['id'],
                    category_id=int(rng.integers(1, 3)),
                    bbox=[1, 2, 10, 12],
                    area=120,
                    iscrowd=0))
    coco = dict(
        info=dict(description='test'),
        licenses=[],
        images=images,
        annotations=anns,
        categories=[dict(id=1, name='a'),
                    dict(id=2, name='b')])
    path = tmp_path / 'instances_train.json'
    path.write_text(json.dumps(coco))
    return str(path), coco


def read_dir(folder):
    return {
        name: (folder / name).read_bytes()
        for name in sorted(os.listdir(folder))
    }


def test_splits_are_exact_partitions(coco_file, tmp_path):
    path, coco = coco_file
    out = tmp_path / 'out'
    split_low_data.main([
        '--ann-file', path, '--out-dir',
        str(out), '--percent', '1', '2.5', '10', '--seed', '1', '2'
    ])
    all_ids = sorted(im['id'] for im in coco['images'])
    labeled_by = {}
    for seed in (1, 2):
        for p in (1, 2.5, 10):
            name = f'instances_train.{seed}@{p:g}'
            lab = json.loads((out / f'{name}.json').read_text())
            unl = json.loads((out / f'{name}-unlabeled.json').read_text())
            lab_ids = [im['id'] for im in lab['images']]
            unl_ids = [im['id'] for im in unl['images']]
            assert len(lab_ids) == round(1003 * p / 100)
            assert len(set(lab_ids)) == len(lab_ids)  # no duplicates
            assert sorted(lab_ids + unl_ids) == all_ids  # a partition
            # every annotation goes with its image, none lost
            for part, ids in ((lab, lab_ids), (unl, unl_ids)):
                assert {a['image_id'] for a in part['annotations']} <= set(ids)
                assert part['categories'] == coco['categories']
                assert part['info'] == coco['info']
            assert len(lab['annotations']) + len(unl['annotations']) == len(
                coco['annotations'])
            labeled_by[seed, p] = set(lab_ids)
    # nested draws: a seed's 1% inside its 2.5% inside its 10%
    for seed in (1, 2):
        assert labeled_by[seed, 1] < labeled_by[seed, 2.5] < \
            labeled_by[seed, 10]
    assert labeled_by[1, 10] != labeled_by[2, 10]
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['source_sha256'] == hashlib.sha256(
        open(path, 'rb').read()).hexdigest()
    assert manifest['mode'] == 'nested' and manifest['images'] == 1003
    for entry in manifest['splits']:
        for name, info in entry['files'].items():
            data = (out / name).read_bytes()
            assert info['sha256'] == hashlib.sha256(data).hexdigest()
            assert info['images'] == len(json.loads(data)['images'])


def test_same_bytes_every_run_and_process_count(coco_file, tmp_path):
    path, _ = coco_file
    args = ['--ann-file', path, '--percent', '1', '5', '--seed', '1', '2']
    split_low_data.main(args + ['--out-dir', str(tmp_path / 'a')])
    split_low_data.main(args + ['--out-dir', str(tmp_path / 'b')])
    run_checked([
        sys.executable, TOOL, *args, '--out-dir',
        str(tmp_path / 'c'), '--nproc', '2'
    ], REPO, dict(os.environ, PYTHONPATH=REPO), 300)
    a = read_dir(tmp_path / 'a')
    assert len(a) == 9  # 2 x 2 pairs x 2 files + manifest
    assert a == read_dir(tmp_path / 'b') == read_dir(tmp_path / 'c')


def test_detreg_mode_is_detregs_formula(coco_file, tmp_path):
    path, coco = coco_file
    out = tmp_path / 'out'
    split_low_data.main([
        '--ann-file', path, '--out-dir',
        str(out), '--percent', '1', '10', '--detreg'
    ])
    ids = [im['id'] for im in coco['images']]  # the json's order
    for p in (1, 10):
        want = np.random.default_rng(42).choice(
            ids, round(len(ids) * p / 100), replace=False)
        lab = json.loads((out / f'instances_train.42@{p}.json').read_text())
        assert sorted(im['id']
                      for im in lab['images']) == sorted(int(i) for i in want)
    assert json.loads((out / 'manifest.json').read_text())['mode'] == \
        'detreg'


def test_bad_input_names_the_problem_and_writes_nothing(coco_file, tmp_path):
    path, coco = coco_file
    out = tmp_path / 'out'
    with pytest.raises(SystemExit, match='does not exist'):
        split_low_data.main(
            ['--ann-file',
             str(tmp_path / 'nope.json'), '--out-dir',
             str(out)])
    # 0.01% of 1,003 images rounds to none
    with pytest.raises(SystemExit, match='rounds to no image'):
        split_low_data.main([
            '--ann-file', path, '--out-dir',
            str(out), '--percent', '10', '0.01'
        ])
    assert not out.exists()
    with pytest.raises(SystemExit):  # argparse: outside (0, 100]
        split_low_data.main(
            ['--ann-file', path, '--out-dir',
             str(out), '--percent', '150'])
    bad = tmp_path / 'bad.json'
    bad.write_text('{"annotations": []}')
    with pytest.raises(SystemExit, match='"images" list'):
        split_low_data.main(['--ann-file', str(bad), '--out-dir', str(out)])
    dup = dict(coco, images=coco['images'] + coco['images'][:1])
    with pytest.raises(ValueError, match='not unique'):
        draw_labeled_ids([im['id'] for im in dup['images']], 0.1, 0)
    with pytest.raises(ValueError, match='not images of the json'):
        split_coco_dict(coco, [-5])
    with pytest.raises(ValueError, match='mode must be'):
        draw_labeled_ids([1, 2], 0.5, 0, 'with-replacement')
    assert not out.exists()
