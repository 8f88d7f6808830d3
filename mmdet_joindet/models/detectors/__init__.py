# Copyright (c) mmdet_joindet contributors. All rights reserved.
