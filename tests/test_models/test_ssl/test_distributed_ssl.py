# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Two gloo processes: DenseSwAV's Sinkhorn equipartitions the global
batch, and DenseSwAV trains under ``MMDistributedDataParallel``
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
    packed = [two_views(dict(img=img)) for _ in range(8)]
    torch.save(
        dict(
            inputs=torch.stack([p['inputs'] for p in packed]),
            data_samples=torch.stack([p['data_samples'] for p in packed])),
        out / 'views.pt')
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


def test_dense_swav_trains_in_step_on_both_processes(ranks):
    """Each process sees its own half of the batch, yet after two steps
    both hold the same weights (gradients all-reduced), and the weights
    moved."""
    _, (r0, r1) = ranks
    assert r0['losses'] != r1['losses']  # different halves
    moved = 0
    for name, value in r0['after'].items():
        torch.testing.assert_close(value, r1['after'][name], msg=name)
        torch.testing.assert_close(r0['before'][name], r1['before'][name])
        moved += int((value - r0['before'][name]).abs().max() > 1e-4)
    assert moved > len(r0['after']) // 2
