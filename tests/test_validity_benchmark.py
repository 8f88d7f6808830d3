# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""benchmarks/validity.py at tiny sizes: two arms, one seed, a few
iterations; a table with every column, and a rerun that skips every
finished run."""
import json
import os
import os.path as osp
import sys

import pytest

from mmdet_joindet.testing import run_checked

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CMD = [
    osp.join(REPO, 'benchmarks',
             'validity.py'), '--quick', '--arms', 'none-ssl', 'joindet',
    '--splits', '10', '--seeds', '0', '--work-dir', 'wd', '--data-root', 'data'
]


@pytest.fixture(scope='module')
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp('validity')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    out = run_checked([sys.executable, *CMD], str(root), env, timeout=900)
    return root, env, out


def test_table_has_every_column(bench):
    root, _, out = bench
    table = (root / 'wd' / 'table.md').read_text()
    head = table.splitlines()[0]
    for col in ('10%: AP', '10%: AP50', '10%: agn. AP50', '10%: agn. AR@100'):
        assert col in head
    rows = [line for line in table.splitlines() if line.startswith('| ')]
    assert any(r.startswith('| JoinDet |') for r in rows)
    assert any(r.startswith('| no detector pretraining') for r in rows)
    assert '(1)' in table  # one seed per cell
    results = json.loads((root / 'wd' / 'results.json').read_text())
    assert {(r['arm'], r['split'], r['seed'])
            for r in results['runs']} == {('none-ssl', 10, 0),
                                          ('joindet', 10, 0)}
    # JoinDet's priors scored at every round (R0, then one per epoch)
    assert [r['round'] for r in results['priors']['joindet']] == [0, 1]
    for png in ('ap_by_arm.png', 'prior_recall_by_round.png'):
        assert (root / 'wd' / png).stat().st_size > 1000


def test_rerun_skips_finished_runs(bench):
    root, env, _ = bench
    before = json.loads((root / 'wd' / 'results.json').read_text())
    out = run_checked([sys.executable, *CMD], str(root), env, timeout=300)
    assert '$ ' not in out  # no tool ran again
    after = json.loads((root / 'wd' / 'results.json').read_text())
    assert after['runs'] == before['runs']


def test_every_arm_caps_priors_alike():
    """A defect the full run showed: the JoinDet arms kept the job's cap of
    10 priors per image while DETReg drew 30 selective-search boxes. Every
    arm that reads priors now holds at most the same number."""
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import validity
    finally:
        sys.path.pop(0)
    from mmdet_joindet.utils.config_edit import find_pipeline
    unlabeled = dict(images='unlabeled.json', image_root='images')
    for arm, spec in validity.ARMS.items():
        if spec is None or spec.get('online', {}).get('type') == \
                'RandomCropPriorGenerator':  # no priors; UP-DETR's crops
            continue
        cfg = validity.pretrain_config(
            arm, spec, unlabeled, None, validity.SIZES['quick'], seed=0)
        pipeline = find_pipeline(cfg.train_dataloader.dataset)
        caps = [t['max_priors'] for t in pipeline
                if t['type'] == 'LoadPriors'] + \
            [t['generator']['max_priors'] for t in pipeline
             if t['type'] == 'GenerateImagePriors'] + \
            [h['max_priors'] for h in cfg.custom_hooks
             if h['type'] == 'PriorUpdateHook']
        assert caps and set(caps) == {validity.PRIORS_PER_IMAGE}, arm
