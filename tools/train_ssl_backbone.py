# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Pretrain a backbone self-supervised (BYOL, DenseSwAV) and export it.

    python tools/train_ssl_backbone.py CONFIG [--work-dir DIR]
        [--resume [CKPT]] [--cfg-options k=v ...] [--launcher pytorch]

Several processes (``torchrun --nproc_per_node N ... --launcher pytorch``)
split each batch as mmdet's ``tools/train.py`` does (``batch_size`` is
per process); DenseSwAV's Sinkhorn codes span the global batch and BYOL's
target moves identically on every process.

Runs mmengine's Runner on the config (``configs/ssl/``; progress and loss
come from its logger), then writes ``<work_dir>/backbone.pth``:
``dict(state_dict=<the online backbone's weights, mmdet ResNet names>,
meta=dict(...))``, so that a detector config can name it as
``backbone.init_cfg=dict(type='Pretrained', checkpoint=...)``.
"""
import argparse
import os
import os.path as osp
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmdet_joindet import __version__
from mmdet_joindet.utils import (add_launcher_args, add_resume_arg,
                                 apply_resume, load_tool_config,
                                 parse_tool_args, setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Self-supervised backbone pretraining (BYOL, DenseSwAV)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    add_resume_arg(parser)
    add_launcher_args(parser)
    return parse_tool_args(parser)


def export_backbone(runner: Runner, cfg: Config) -> str:
    """Write the online backbone of ``runner.model`` to the work dir.

    The file is written to a temporary name and renamed, so a reader never
    sees half a file.

    Returns:
        str: The path of ``backbone.pth``.
    """
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    state_dict = {
        k: v.detach().cpu().clone()
        for k, v in model.backbone.state_dict().items()
    }
    meta = dict(
        config=cfg.filename,
        backbone=cfg.model.backbone.to_dict(),
        ssl_method=type(model).__name__,
        iter=runner.iter,
        mmdet_joindet_version=__version__,
        time=time.strftime('%Y-%m-%d %H:%M:%S'))
    path = osp.join(runner.work_dir, 'backbone.pth')
    tmp = f'{path}.{os.getpid()}.tmp'
    try:
        torch.save(dict(state_dict=state_dict, meta=meta), tmp)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def main() -> None:
    args = parse_args()
    cfg = load_tool_config(args.config, args.launcher, args.cfg_options,
                           args.work_dir)
    apply_resume(cfg, args.resume)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    if is_main_process():
        path = export_backbone(runner, cfg)
        runner.logger.info(f'backbone weights written to {path}')


if __name__ == '__main__':
    main()
