# Copyright (c) mmdet_joindet contributors. All rights reserved.
from . import dense_heads, detectors, ssl, task_modules  # noqa: F401
