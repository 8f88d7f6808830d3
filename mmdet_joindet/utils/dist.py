# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Multi-process runs on CPUs (gloo), where mmengine assumes GPUs."""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> None:
    """Let mmengine's ``pytorch`` launcher run on a machine without CUDA.

    mmengine 0.10.7 calls ``torch.cuda.set_device`` when it initialises the
    process group and wraps the model with ``device_ids=[LOCAL_RANK]``;
    both fail without CUDA. With ``launcher != 'none'`` and no CUDA, this
    initialises the process group itself (gloo unless
    ``env_cfg.dist_cfg.backend`` names another CPU backend; mmengine then
    skips its own initialisation) and wraps the model in
    ``MMDistributedDataParallel`` with ``device_ids=None`` unless the
    config sets a ``model_wrapper_cfg``. Does nothing on GPU machines.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if not torch_dist.is_initialized():
        backend = cfg.get('env_cfg', {}).get('dist_cfg',
                                             {}).get('backend', 'gloo')
        if backend == 'nccl':
            backend = 'gloo'
        torch_dist.init_process_group(
            backend=backend,
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
