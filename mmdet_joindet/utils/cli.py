# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""What every tool of ``tools/`` does with its config arguments."""
import argparse
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction


def load_tool_config(config: str,
                     launcher: str = 'none',
                     cfg_options: Optional[dict] = None,
                     work_dir: Optional[str] = None) -> Config:
    """``Config.fromfile`` plus mmdet's conventions for tools.

    ``--cfg-options`` are merged, ``--launcher`` recorded, and the work
    dir is ``work_dir``, else the config's, else
    ``./work_dirs/<config name>``.
    """
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def tool_parser(
    description: str,
    config_help: str = 'config file path',
    work_dir_help: str = 'the dir to save logs and models'
) -> argparse.ArgumentParser:
    """The arguments every tool takes, as mmdet's tools name them:
    ``config``, ``--work-dir``, ``--cfg-options``, ``--launcher`` and the
    ``--local_rank`` that ``torch.distributed.launch`` passes. A tool adds
    its own, then parses with :func:`parse_tool_args`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help=config_help)
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def add_resume_arg(parser: argparse.ArgumentParser) -> None:
    """``--resume [CKPT]`` as mmdet's ``tools/train.py`` has it; applied to
    a config by :func:`apply_resume`."""
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or from the latest one in the '
        'work dir when no path is given')


def add_figure_args(parser: argparse.ArgumentParser) -> None:
    """What the figure tools take besides their inputs: the images
    (``--images`` indices or the first ``--num``), ``--out`` (a PNG),
    ``--device`` and ``--cfg-options``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--images', type=int, nargs='+', help='indices')
    group.add_argument(
        '--num', type=int, default=4, help='the first N images (default 4)')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')


def load_figure_config(args: argparse.Namespace) -> Config:
    """The config of a figure tool with its ``--cfg-options`` merged."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def parse_tool_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, and export ``LOCAL_RANK`` for mmengine when a launcher passed
    it as an argument rather than in the environment."""
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def apply_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume``: None leaves the config as it is; ``'auto'`` resumes
    from the work dir's latest checkpoint; a path resumes from it."""
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume


def build_runner(cfg: Config):
    """The config's ``runner_type`` if it names one, else mmengine's
    ``Runner`` (what mmdet's tools do)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
