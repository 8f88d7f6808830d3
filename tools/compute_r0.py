# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Compute the initial priors R0 of a JoinDet pretraining config.

    python tools/compute_r0.py CONFIG [--work-dir DIR] [--force]
        [--cfg-options k=v ...] [--launcher pytorch]
    bash tools/dist_compute_r0.sh CONFIG GPUS   # sharded over ranks

``R_0 = RG(K(G(x)))`` (paper eq. 3): region priors of the frozen,
self-supervised backbone's features over the whole unlabeled set, written
as round 0 of the config's prior store (``<work_dir>/priors`` unless the
``PriorUpdateHook`` names another). Training then starts from it (the hook
computes it itself when the store is empty; this tool lets a cluster do it
once, ahead of time, with its own resources).
"""
import argparse

from mmdet_joindet.engine.hooks import PriorUpdateHook
from mmdet_joindet.utils import (build_runner, load_tool_config,
                                 parse_tool_args, setup_cpu_distributed,
                                 tool_parser)


def parse_args() -> argparse.Namespace:
    parser = tool_parser('Compute R0 priors', 'JoinDet pretraining config',
                         'the run folder (holds priors/)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='recompute even if the store already has a committed round')
    return parse_tool_args(parser)


def main() -> None:
    args = parse_args()
    cfg = load_tool_config(args.config, args.launcher, args.cfg_options,
                           args.work_dir)
    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    hooks = [h for h in runner.hooks if isinstance(h, PriorUpdateHook)]
    if not hooks:
        raise SystemExit(f'{args.config} has no PriorUpdateHook in '
                         'custom_hooks: it is not a JoinDet pretraining '
                         'config')
    hook = hooks[0]
    runner._init_model_weights()  # the backbone's (SwAV) weights
    hook.before_run(runner)
    current = hook.store.current_round()
    if current is not None and not args.force:
        raise SystemExit(f'{hook.prior_root} already holds round {current}; '
                         'pass --force to recompute R0')
    hook.compute_round(runner, initial=True)


if __name__ == '__main__':
    main()
