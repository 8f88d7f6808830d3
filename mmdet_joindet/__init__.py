# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""JoinDet (NeurIPS 2022) as an MMDetection 3.x plugin.

Importing this package (e.g. through a config's
``custom_imports=dict(imports=['mmdet_joindet'], allow_failed_imports=False)``)
registers every module of the plugin in MMDetection's registries and makes
mmengine runner checkpoints loadable under torch >= 2.6 without disabling
``weights_only`` (see :mod:`mmdet_joindet.utils.safe_load`).
"""
from .utils import allow_mmengine_checkpoints
from .version import __version__, version_info

allow_mmengine_checkpoints()

from . import datasets, engine, evaluation, models  # noqa: E402,F401,I001

__all__ = ['__version__', 'version_info']
