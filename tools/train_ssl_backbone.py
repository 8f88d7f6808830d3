# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Pretrain a backbone self-supervised (DenseSwAV) and export it.

    python tools/train_ssl_backbone.py CONFIG [--work-dir DIR]
        [--resume [CKPT]] [--cfg-options k=v ...] [--launcher pytorch]

Several processes (``torchrun --nproc_per_node N ... --launcher pytorch``)
split each batch as mmdet's ``tools/train.py`` does (``batch_size`` is
per process); DenseSwAV's Sinkhorn codes span the global batch.

Runs mmengine's Runner on the config (``configs/ssl/``; progress and loss
come from its logger); :class:`ExportBackboneHook` (added when the config
lacks it) then writes ``<work_dir>/backbone.pth``: ``dict(state_dict=<the
backbone weights, mmdet ResNet names>, meta=dict(...))``, so
that a detector config can name it as
``backbone.init_cfg=dict(type='Pretrained', checkpoint=...)``. The
configs of ``configs/ssl/`` carry the hook, so ``mim train mmdet_joindet
CONFIG`` (``tools/train.py``) exports the same file.
"""
import argparse

from mmdet_joindet.engine.hooks import ExportBackboneHook
from mmdet_joindet.utils import (add_resume_arg, apply_resume, build_runner,
                                 load_tool_config, parse_tool_args,
                                 setup_cpu_distributed, tool_parser)


def parse_args() -> argparse.Namespace:
    parser = tool_parser('Self-supervised backbone pretraining (DenseSwAV)',
                         'train config file path')
    add_resume_arg(parser)
    return parse_tool_args(parser)


def main() -> None:
    args = parse_args()
    cfg = load_tool_config(args.config, args.launcher, args.cfg_options,
                           args.work_dir)
    apply_resume(cfg, args.resume)
    hooks = cfg.setdefault('custom_hooks', [])
    if not any(
            h.get('type') in ('ExportBackboneHook', ExportBackboneHook)
            for h in hooks):
        hooks.append(dict(type='ExportBackboneHook'))
    setup_cpu_distributed(cfg)
    build_runner(cfg).train()


if __name__ == '__main__':
    main()
