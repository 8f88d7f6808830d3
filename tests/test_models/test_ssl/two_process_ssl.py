# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Run by ``test_distributed_ssl.py`` under ``torch.distributed.run`` with
two gloo processes; writes ``<out>/rank<r>.pt``.

1. ``sinkhorn`` of this rank's half of ``<out>/scores.pt`` (rank 0 the
   first rows, rank 1 the rest: uneven halves).
2. Two training steps of a tiny DenseSwAV wrapped in mmengine's
   ``MMDistributedDataParallel``, on this rank's half of a fixed batch:
   the weights before and after, and the losses.
"""
import sys

import torch
import torch.distributed as dist
from mmdet.registry import MODELS
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper

import mmdet_joindet  # noqa: F401
from mmdet_joindet.models.ssl import sinkhorn


def main(out: str) -> None:
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    scores = torch.load(f'{out}/scores.pt')
    split = 137  # of 300
    mine = scores[:split] if rank == 0 else scores[split:]
    codes = sinkhorn(mine, 0.05, 3)

    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='DenseSwAV',
            backbone=dict(
                type='ResNet',
                depth=18,
                base_channels=16,
                out_indices=(3, ),
                init_cfg=None),
            view_size=48,
            hidden_channels=32,
            out_channels=16,
            num_prototypes=8))
    model.init_weights()
    wrapper = MMDistributedDataParallel(module=model, device_ids=None)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    packed = torch.load(f'{out}/views.pt')  # views [8, 2, 3, 48, 48] uint8
    mine = slice(4 * rank, 4 * (rank + 1))
    batch = dict(
        inputs=list(packed['inputs'][mine]),
        data_samples=list(packed['data_samples'][mine]))
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    losses = [
        float(wrapper.train_step(batch, optim)['loss']) for _ in range(2)
    ]
    after = {k: v.detach().clone() for k, v in model.named_parameters()}
    torch.save(
        dict(codes=codes, before=before, after=after, losses=losses),
        f'{out}/rank{rank}.pt')
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
