# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Two gloo processes: DenseSwAV's Sinkhorn equipartitions the global
batch, and BYOL's target moves under ``MMDistributedDataParallel``
(``two_process_ssl.py`` runs in each process)."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmdet.registry import TRANSFORMS

import mmdet_joindet  # noqa: F401
from mmdet_joindet.models.ssl import sinkhorn
from mmdet_joindet.testing import run_checked

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
SCRIPT = osp.join(osp.dirname(__file__), 'two_process_ssl.py')


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    from skimage import data
    out = tmp_path_factory.mktemp('ddp_ssl')
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.uniform(-1, 1, (300, 12)).astype('f4'))
    torch.save(scores, out / 'scores.pt')
    np.random.seed(0)
    two_views = TRANSFORMS.build(dict(type='TwoViews', size=48))
    img = np.ascontiguousarray(data.astronaut()[..., ::-1])  # BGR
    views = torch.stack([two_views(dict(img=img))['inputs'] for _ in range(8)])
    torch.save(views, out / 'views.pt')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    run_checked([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        '--master_port=29531', SCRIPT,
        str(out)
    ], REPO, env, 300)
    return scores, [torch.load(out / f'rank{r}.pt') for r in (0, 1)]


def test_sinkhorn_codes_span_both_processes(ranks):
    """Uneven halves (137 and 163 rows) on two processes give the rows of
    the one-process codes of all 300."""
    scores, (r0, r1) = ranks
    whole = sinkhorn(scores, 0.05, 3)
    torch.testing.assert_close(
        torch.cat([r0['codes'], r1['codes']]), whole, rtol=1e-5, atol=1e-6)
    # equipartition over the global batch, not each process's own
    alone = sinkhorn(scores[:137], 0.05, 3)
    assert (alone - r0['codes']).abs().max() > 1e-3


def test_byol_target_moves_under_ddp(ranks):
    """After two steps the target is the EMA of the online weights that
    the first step left (tau 0.9; the first update is a no-op: target and
    online start equal), the same on both processes."""
    _, (r0, r1) = ranks
    assert r0['num_updates'] == r1['num_updates'] == 2
    start, after_one = r0['online_before']
    for name, value in r0['target'].items():
        online = name.replace('target_', '', 1)
        torch.testing.assert_close(value, r1['target'][name])
        torch.testing.assert_close(after_one[online],
                                   r1['online_before'][1][online])
        expected = 0.9 * start[online] + 0.1 * after_one[online]
        torch.testing.assert_close(value, expected)

    def step(a, b):
        return (a - b).abs().max().item()

    # it moved by a tenth of what the first step moved the online weights
    # (not in every block: mmdet zero-initialises the residuals' last BN)
    stepped = 0
    for name, value in r0['target'].items():
        online = name.replace('target_', '', 1)
        size = step(after_one[online], start[online])
        if size > 1e-3:
            stepped += 1
            assert step(value, start[online]) == pytest.approx(
                0.1 * size, rel=0.05), name
    assert stepped > len(r0['target']) // 4
