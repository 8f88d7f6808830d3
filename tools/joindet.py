# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""JoinDet's jobs: the whole method on the embedded data, or your images.

    python tools/joindet.py demo [--work-dir work_dirs/main_job]
    python tools/joindet.py pretrain --images DIR_OR_JSON --work-dir W
    python tools/joindet.py finetune --pretrained W --train-json L.json \\
        --val-json V.json --work-dir F
    python tools/joindet.py evaluate --finetuned F --val-json V.json
    python tools/joindet.py ssl --images DIR_OR_JSON --work-dir S
    python tools/joindet.py --nproc 8 ...   # every stage on 8 GPUs

Every stage is an ordinary mmengine run (tools/train.py, tools/test.py,
tools/train_ssl_backbone.py) whose resolved config is written to its work
dir, so ``mim train mmdet_joindet <that config>`` or
``tools/dist_train.sh`` repeats it on a GPU or many. A second run skips
finished stages and resumes an interrupted one. See docs/main_job.md.
"""
import argparse
import sys

from mmdet_joindet.job import (DemoSettings, JobInputError, StageFailed,
                               set_processes)
from mmdet_joindet.job.own_data import add_own_data_commands, run_command


def add_demo(sub) -> None:
    p = sub.add_parser(
        'demo',
        help='the whole method on the embedded proxy data, with a report')
    p.add_argument('--work-dir', default='work_dirs/main_job')
    p.add_argument('--data-root', default='data/proxy')
    d = DemoSettings()
    for name, value in vars(d).items():
        if isinstance(value, bool):
            continue
        p.add_argument(
            '--' + name.replace('_', '-'), type=type(value), default=value)
    p.add_argument(
        '--no-baseline',
        action='store_true',
        help='skip the finetune without detector pretraining')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument(
        '--nproc',
        type=int,
        default=1,
        help='processes per training and test stage: one per GPU, or gloo '
        'CPU processes (torch.distributed.run, as tools/dist_train.sh)')
    sub = parser.add_subparsers(dest='command', required=True)
    add_demo(sub)
    add_own_data_commands(sub)
    args = parser.parse_args(argv)
    if args.nproc < 1:
        parser.error(f'--nproc must be >= 1, got {args.nproc}')
    set_processes(args.nproc)
    try:
        if args.command == 'demo':
            from mmdet_joindet.job import run_demo
            fields = {
                k: getattr(args, k)
                for k in vars(DemoSettings()) if hasattr(args, k)
            }
            settings = DemoSettings(**fields, baseline=not args.no_baseline)
            report = run_demo(args.work_dir, args.data_root, settings)
            print(f'\nThe report is {report}')
        else:
            run_command(args)
    except (JobInputError, StageFailed) as e:
        sys.exit(f'joindet.py {args.command}: error: {e}')


if __name__ == '__main__':
    main()
