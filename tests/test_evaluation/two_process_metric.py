# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Run by ``test_class_agnostic_metric.py`` under ``torch.distributed.run``
with two gloo processes: rank ``r`` feeds samples ``r::2`` of
``<out>/samples.pt`` to a ``ClassAgnosticCocoMetric`` and every rank
writes what ``evaluate`` returned to ``<out>/rank<r>.json``."""
import json
import sys

import torch
import torch.distributed as dist
from mmdet.registry import METRICS

import mmdet_joindet  # noqa: F401


def main(out: str, ann_file: str) -> None:
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    packed = torch.load(f'{out}/samples.pt')
    metric = METRICS.build(
        dict(
            type='ClassAgnosticCocoMetric',
            ann_file=ann_file or None,
            collect_device='cpu'))
    metric.dataset_meta = dict(classes=packed['classes'])
    samples = packed['samples']
    for i in range(rank, len(samples), world):
        metric.process({}, [samples[i]])
    with open(f'{out}/rank{rank}.json', 'w') as f:
        json.dump(metric.evaluate(len(samples)), f)
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else '')
