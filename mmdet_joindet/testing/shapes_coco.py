# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""A tiny, deterministic COCO-format detection set drawn with numpy.

Used by the smoke run, the tests and the docs' quick start, where nothing
may be downloaded: filled rectangles and ellipses of random colours on
smooth random backgrounds, with exact boxes. It checks mechanics, not
accuracy (issue 6's proxy data builder makes realistic scenes).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from mmdet_joindet.datasets.photos import load_photos, photo_crop
from mmdet_joindet.utils.atomic import write_bytes_atomic

SHAPES_CLASSES = ('rectangle', 'ellipse')


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colour field: a coarse random grid, bilinearly upsampled."""
    coarse = rng.uniform(0, 255, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return img


def _photo_background(rng: np.random.Generator, h: int, w: int,
                      photos: List[np.ndarray]) -> np.ndarray:
    """A random crop of one of scikit-image's photographs (BGR float)."""
    return photo_crop(rng, h, w, photos)[0]


def _draw(rng: np.random.Generator, img: np.ndarray,
          min_size: int) -> Tuple[List[float], int]:
    """Draw one shape; returns its xywh box (pixels) and category index."""
    h, w = img.shape[:2]
    bw = int(rng.integers(min_size, max(min_size + 1, w // 2)))
    bh = int(rng.integers(min_size, max(min_size + 1, h // 2)))
    x = int(rng.integers(0, w - bw + 1))
    y = int(rng.integers(0, h - bh + 1))
    colour = rng.uniform(0, 255, 3)
    label = int(rng.integers(0, len(SHAPES_CLASSES)))
    if label == 0:
        img[y:y + bh, x:x + bw] = colour
    else:
        yy, xx = np.mgrid[0:bh, 0:bw]
        cy, cx = (bh - 1) / 2, (bw - 1) / 2
        inside = ((yy - cy) / (bh / 2))**2 + ((xx - cx) / (bw / 2))**2 <= 1
        img[y:y + bh, x:x + bw][inside] = colour
    return [float(x), float(y), float(bw), float(bh)], label


def make_shapes_coco(root: str,
                     num_images: int = 8,
                     size: Tuple[int, int] = (96, 128),
                     max_objects: int = 3,
                     seed: int = 0,
                     ann_file: str = 'annotations.json',
                     img_dir: str = 'images',
                     backgrounds: str = 'synthetic') -> Dict:
    """Write ``num_images`` PNGs and a COCO json under ``root``.

    Image sizes vary around ``size`` (h, w) so batches need padding.
    ``backgrounds='photos'`` draws the shapes on crops of scikit-image's
    photographs instead of smooth synthetic colour fields.

    Returns:
        dict: the COCO dict that was written to ``root/ann_file``.
    """
    rng = np.random.default_rng(seed)
    if backgrounds not in ('synthetic', 'photos'):
        raise ValueError("backgrounds must be 'synthetic' or 'photos', got "
                         f'{backgrounds!r}')
    photos = load_photos() if backgrounds == 'photos' else None
    os.makedirs(osp.join(root, img_dir), exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        h = int(size[0] + rng.integers(-size[0] // 4, size[0] // 4 + 1))
        w = int(size[1] + rng.integers(-size[1] // 4, size[1] // 4 + 1))
        img = (
            _background(rng, h, w) if photos is None else _photo_background(
                rng, h, w, photos))
        for _ in range(int(rng.integers(1, max_objects + 1))):
            box, label = _draw(rng, img, min_size=max(4, min(h, w) // 8))
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=i + 1,
                    category_id=label + 1,
                    bbox=box,
                    area=box[2] * box[3],
                    iscrowd=0))
        name = f'{i:06d}.png'
        cv2.imwrite(
            osp.join(root, img_dir, name),
            np.clip(img, 0, 255).astype(np.uint8))
        images.append(dict(id=i + 1, file_name=name, height=h, width=w))
    coco = dict(
        images=images,
        annotations=annotations,
        categories=[
            dict(id=k + 1, name=n) for k, n in enumerate(SHAPES_CLASSES)
        ])
    write_bytes_atomic(osp.join(root, ann_file), json.dumps(coco).encode())
    return coco
