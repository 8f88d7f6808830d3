# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""What every tool of ``tools/`` does with its config arguments."""
import os.path as osp
from typing import Optional

from mmengine.config import Config


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
