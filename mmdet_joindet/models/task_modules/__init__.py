# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .object_priors import *  # noqa: F401,F403
