# Copyright (c) mmdet_joindet contributors. All rights reserved.
from . import hooks  # noqa: F401
