# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The job's checks of what a user gives it, before anything runs.

Each failure raises :class:`JobInputError` with what is wrong and what to
do; none of them writes or removes a file.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from mmdet_joindet.datasets.image_folder import IMG_EXTENSIONS, list_images
from mmdet_joindet.datasets.transforms.load_image_safely import \
    incomplete_image_reason
from mmdet_joindet.utils.convert import EMB_BRANCH, load_checkpoint_safely

__all__ = [
    'JobInputError', 'unlabeled_images', 'check_readable',
    'check_labeled_json', 'check_same_categories', 'check_enough_images',
    'checkpoint_kind', 'check_device', 'DEFAULT_MAX_BAD_SHARE'
]

# Unreadable images are skipped (with a count) up to this share of a set;
# more stops the job: something is wrong with the copy, not a few files.
DEFAULT_MAX_BAD_SHARE = 0.05


class JobInputError(ValueError):
    """What the user gave cannot work; the message says why and the fix."""


def _few(items: Sequence, n: int = 3) -> str:
    shown = ', '.join(str(x) for x in list(items)[:n])
    return shown + (f' (and {len(items) - n} more)' if len(items) > n else '')


def unlabeled_images(source: str) -> Tuple[str, List[str]]:
    """The images of a folder (any depth) or of a COCO json's ``images``.

    Returns:
        tuple: ``('folder' | 'json', absolute image paths)``, sorted as the
        job's dataset lists them.
    """
    if not osp.exists(source):
        raise JobInputError(
            f'{source} does not exist: give a folder of images (any depth) '
            'or a COCO json that lists them')
    if osp.isdir(source):
        rel = sorted(list_images(source, '', IMG_EXTENSIONS))
        if not rel:
            found = sorted({
                osp.splitext(f)[1].lower() or '(none)'
                for _, _, files in os.walk(source)
                for f in files
            })
            raise JobInputError(
                f'{source} holds no image with a known extension '
                f'({" ".join(IMG_EXTENSIONS)}); found extensions: '
                f'{_few(found, 8) or "none (the folder is empty)"}')
        return 'folder', [osp.join(source, r) for r in rel]
    images = _load_json(source).get('images') or []
    if not images:
        raise JobInputError(f'{source} lists no image ("images" is empty)')
    root = osp.dirname(source)
    return 'json', [
        osp.join(root, im['file_name'])
        for im in sorted(images, key=lambda im: im['id'])
    ]


def check_readable(paths: Sequence[str],
                   max_bad_share: float = DEFAULT_MAX_BAD_SHARE
                   ) -> List[Tuple[str, str]]:  # yapf: disable
    """Decode every image; return the unreadable ones with their reason.

    They are skipped during training (``LoadImageSafely``); when more than
    ``max_bad_share`` of them fail, the set is refused.
    """
    bad = []
    for path in paths:
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except OSError as e:
            bad.append((path, f'cannot open ({e.strerror})'))
            continue
        reason = incomplete_image_reason(data)
        if reason is None and cv2.imdecode(
                np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None:
            reason = 'not a decodable image'
        if reason is not None:
            bad.append((path, reason))
    if paths and all(r.startswith('cannot open') for _, r in bad) \
            and len(bad) == len(paths):
        raise JobInputError(
            f'none of the {len(paths)} images exists where it should, e.g. '
            f'{paths[0]}: give the folder the images are in (for a COCO '
            'json, --image-root: file_name is relative to it)')
    if paths and len(bad) > max_bad_share * len(paths):
        raise JobInputError(
            f'{len(bad)} of {len(paths)} images cannot be read (more than '
            f'{max_bad_share:.0%}), e.g. ' +
            _few([f'{p}: {r}' for p, r in bad]) +
            ': fix or remove them, or allow more with --max-bad-share')
    return bad


def _load_json(path: str) -> Dict:
    if not osp.isfile(path):
        raise JobInputError(f'{path} does not exist: give a COCO json')
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as e:
        raise JobInputError(f'{path} is not valid JSON ({e})') from e
    if not isinstance(data, dict):
        raise JobInputError(f'{path} is not a COCO json (a dict with '
                            '"images", "annotations", "categories")')
    return data


def check_labeled_json(path: str,
                       image_root: Optional[str] = None,
                       tol: float = 1.0) -> Dict:
    """A labeled COCO json: every image exists, every box lies inside its
    image (within ``tol`` pixels) and has a positive size.

    Args:
        path (str): The json.
        image_root (str, optional): Where ``file_name`` is relative to;
            the json's folder by default.

    Returns:
        dict: The loaded json.
    """
    coco = _load_json(path)
    root = image_root or osp.dirname(path)
    images = coco.get('images') or []
    if not images:
        raise JobInputError(f'{path} lists no image')
    if not coco.get('categories'):
        raise JobInputError(f'{path} has no "categories"')
    if not coco.get('annotations'):
        raise JobInputError(f'{path} has no box ("annotations" is empty): '
                            'a labeled set needs boxes')
    missing = [
        im['file_name'] for im in images
        if not osp.isfile(osp.join(root, im['file_name']))
    ]
    if missing:
        raise JobInputError(
            f'{len(missing)} of the {len(images)} images of {path} are not '
            f'under {root}: {_few(missing)}. Give the folder they are in '
            '(--images) or fix their file_name')
    sizes = {im['id']: (im.get('width'), im.get('height')) for im in images}
    bad = []
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        if ann['image_id'] not in sizes:
            bad.append(f'annotation {ann["id"]}: image {ann["image_id"]} is '
                       'not in "images"')
            continue
        width, height = sizes[ann['image_id']]
        if not (w > 0 and h > 0):
            bad.append(f'annotation {ann["id"]}: box {ann["bbox"]} is empty')
        elif width and height and (x < -tol or y < -tol or x + w > width + tol
                                   or y + h > height + tol):
            bad.append(f'annotation {ann["id"]}: box {ann["bbox"]} (x, y, w, '
                       f'h) lies outside its {width} x {height} image')
    if bad:
        raise JobInputError(
            f'{path}: {len(bad)} boxes are wrong: {_few(bad)}. COCO boxes '
            'are [x, y, width, height] in pixels of the image')
    return coco


def check_same_categories(train: Dict, val: Dict, train_path: str,
                          val_path: str) -> None:
    """Train and val must name the same categories with the same ids."""
    a = {c['id']: c['name'] for c in train['categories']}
    b = {c['id']: c['name'] for c in val['categories']}
    if a != b:
        diff = sorted(set(a.items()) ^ set(b.items()))
        raise JobInputError(
            f'the categories of {train_path} and {val_path} differ '
            f'(id, name): {_few(diff, 5)}. Both jsons must list the same '
            'categories with the same ids')


def check_enough_images(n: int, batch_size: int, what: str) -> None:
    if n < batch_size:
        raise JobInputError(
            f'{what} holds {n} images, fewer than one batch of {batch_size}: '
            'add images or lower --batch-size')


def checkpoint_kind(path: str) -> str:
    """``'joindet'`` (a pretraining checkpoint) or ``'converted'`` (for a
    stock Deformable DETR); anything else is refused."""
    if not osp.isfile(path):
        raise JobInputError(f'checkpoint {path} does not exist')
    try:
        checkpoint, state = load_checkpoint_safely(path)
    except Exception as e:  # any unreadable file: say what it is
        raise JobInputError(f'{path} is not a checkpoint this job can read '
                            f'({type(e).__name__}: {e})') from e
    if any(k.startswith(EMB_BRANCH) for k in state):
        return 'joindet'
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if isinstance(meta, dict) and 'converted_from' in meta:
        return 'converted'
    raise JobInputError(
        f'{path} is neither a JoinDet pretraining checkpoint nor one '
        'converted from it (tools/model_converters/'
        'joindet_to_deformable_detr.py): give the pretraining work dir or '
        'its epoch_N.pth')


def check_device(device: str) -> None:
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise JobInputError(
            f'--device {device} asks for a GPU, but this machine has no CUDA '
            'device torch can use: run with --device cpu (slower), or on a '
            'machine with a GPU and a CUDA build of torch and mmcv')
