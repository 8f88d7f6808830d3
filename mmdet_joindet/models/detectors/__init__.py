# Copyright (c) mmdet_joindet contributors. All rights reserved.
from .joindet import (DEFAULT_SOURCES, PRIOR_SOURCES, JoinDet, JoinDetPriors,
                      check_prior_sources)

__all__ = [
    'JoinDet', 'JoinDetPriors', 'PRIOR_SOURCES', 'DEFAULT_SOURCES',
    'check_prior_sources'
]
