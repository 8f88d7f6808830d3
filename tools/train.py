# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Train (pretrain or finetune) a detector from a config, as mmdet does.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]

Configs of this repo import ``mmdet_joindet`` through ``custom_imports``;
``--cfg-options custom_imports.imports=[mmdet_joindet]`` does it for any
other config.
"""
import argparse

from mmengine.config import Config

from mmdet_joindet.utils import (add_resume_arg, apply_resume, build_runner,
                                 load_tool_config, parse_tool_args,
                                 setup_cpu_distributed, tool_parser)


def parse_args() -> argparse.Namespace:
    parser = tool_parser('Train a detector', 'train config file path')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual batch size')
    add_resume_arg(parser)
    return parse_tool_args(parser)


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_tool_config(args.config, args.launcher, args.cfg_options,
                           args.work_dir)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in \
                cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr` with '
                               '`base_batch_size` in the config')
        cfg.auto_scale_lr.enable = True
    apply_resume(cfg, args.resume)
    return cfg


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    setup_cpu_distributed(cfg)
    build_runner(cfg).train()


if __name__ == '__main__':
    main()
