# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Jobs: the whole method on the embedded data (``demo``) and on a
user's own images, as sequences of ordinary runs of the package's tools."""
from .checks import JobInputError
from .demo import DemoSettings, run_demo
from .own_data import evaluate, finetune, pretrain, ssl
from .stages import Stage, StageFailed, run_tool, set_processes

__all__ = [
    'DemoSettings', 'run_demo', 'JobInputError', 'Stage', 'StageFailed',
    'run_tool', 'set_processes', 'ssl', 'pretrain', 'finetune', 'evaluate'
]
