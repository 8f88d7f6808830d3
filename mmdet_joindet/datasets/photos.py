# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""scikit-image's photographs as backgrounds of generated scenes (the
shapes set of :mod:`mmdet_joindet.testing` and the proxy data)."""
from typing import List, Sequence, Tuple

import cv2
import numpy as np

# scikit-image's photographs; ``load_photos`` skips any that need a download.
PHOTO_NAMES = ('astronaut', 'coffee', 'chelsea', 'rocket', 'camera', 'coins',
               'cat', 'immunohistochemistry', 'hubble_deep_field',
               'motorcycle_left')


def load_photos(names: Sequence[str] = PHOTO_NAMES) -> List[np.ndarray]:
    """scikit-image's images ``names``, BGR uint8 ``[H, W, 3]`` each.

    Grey images are repeated over 3 channels; any image that fails to load
    (one that needs a download, or is absent from this version) is skipped.
    """
    from skimage import data
    photos = []
    for name in names:
        try:
            img = getattr(data, name)()
        except Exception:  # some need pooch downloads: skip those
            continue
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(img[..., 2::-1]))
    return photos


def photo_crop(rng: np.random.Generator, h: int, w: int,
               photos: List[np.ndarray]) -> Tuple[np.ndarray, int]:
    """A random ``[h, w, 3]`` crop (BGR float32) of one of ``photos``,
    magnified 1-2x, and the index of the photograph used."""
    index = int(rng.integers(len(photos)))
    photo = photos[index]
    scale = max(h / photo.shape[0], w / photo.shape[1]) * rng.uniform(1, 2)
    photo = cv2.resize(photo, (int(np.ceil(
        photo.shape[1] * scale)), int(np.ceil(photo.shape[0] * scale))))
    y = int(rng.integers(0, photo.shape[0] - h + 1))
    x = int(rng.integers(0, photo.shape[1] - w + 1))
    return photo[y:y + h, x:x + w].astype(np.float32), index
