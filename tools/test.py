# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Evaluate a checkpoint on a config's test set, as mmdet does.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse

from mmdet_joindet.utils import (build_runner, load_tool_config,
                                 parse_tool_args, setup_cpu_distributed,
                                 tool_parser)


def parse_args() -> argparse.Namespace:
    parser = tool_parser('Test (and eval) a model', 'test config file path',
                         'the dir to save logs and metrics')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump the predictions to this pickle file')
    return parse_tool_args(parser)


def main() -> None:
    args = parse_args()
    cfg = load_tool_config(args.config, args.launcher, args.cfg_options,
                           args.work_dir)
    cfg.load_from = args.checkpoint
    setup_cpu_distributed(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='DumpResults', out_file_path=args.out))
    build_runner(cfg).test()


if __name__ == '__main__':
    main()
