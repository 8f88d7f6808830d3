# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .atomic import save_atomic, write_atomic, write_bytes_atomic
from .cli import (add_figure_args, add_resume_arg, apply_resume, build_runner,
                  load_figure_config, load_tool_config, parse_tool_args,
                  tool_parser)
from .convert import convert_checkpoint, convert_joindet_state_dict
from .dist import setup_cpu_distributed
from .export_backbone import backbone_state_dict, export_backbone_checkpoint
from .safe_load import allow_mmengine_checkpoints, checkpoint_safe_globals

__all__ = [
    'add_figure_args', 'load_figure_config', 'add_resume_arg', 'apply_resume',
    'build_runner', 'parse_tool_args', 'tool_parser',
    'allow_mmengine_checkpoints', 'checkpoint_safe_globals',
    'convert_checkpoint', 'convert_joindet_state_dict',
    'setup_cpu_distributed', 'load_tool_config', 'save_atomic', 'write_atomic',
    'write_bytes_atomic', 'backbone_state_dict', 'export_backbone_checkpoint'
]
