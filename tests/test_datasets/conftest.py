# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Real image files for the dataset tests, written into ``tmp_path``."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest


def photo(name: str = 'astronaut', size=(48, 64)) -> np.ndarray:
    """A scikit-image photo, BGR uint8 ``[h, w, 3]`` resized to ``size``."""
    from skimage import data
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., 2::-1])  # RGB(A) -> BGR
    return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def write_image(path: str, name: str = 'astronaut', size=(48, 64)) -> str:
    """Write a photo to ``path`` (format from its extension); returns it."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    ext = osp.splitext(path)[1].lower()
    ok, buf = cv2.imencode(ext, photo(name, size))
    assert ok
    with open(path, 'wb') as f:
        f.write(buf.tobytes())
    return path


@pytest.fixture
def image_writer():
    return write_image
