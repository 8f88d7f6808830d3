# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""A small, realistic, offline detection proxy set: digits on photographs.

Issue 6, item 1. Each image is a random crop of one of scikit-image's
photographs or textures, with 1-6 real handwritten digits pasted on it
(scikit-learn's ``load_digits``: 1,797 8x8 scans, values 0..16). The class
of an object is its digit, so the 10 categories are ``'0'..'9'`` (COCO
``category_id`` = digit + 1).

Why blend: hard-pasted objects of random colours have edges that favour
selective search over the eigen-map region priors (its graph-based
segmentation starts from colour edges). The default ``blend='feather'``
therefore blurs each mask's edges and colours each object near the mean
colour of the background under it, shifted by a random but bounded
contrast; ``blend='hard'`` pastes a binary mask in a uniformly random
colour (the old way, the setting that favours selective search).
``blend='none'`` draws everything as ``'feather'`` does (the same crops,
placements and boxes) but paints nothing: the same annotations on the bare
backgrounds, so a method's recall there is its chance level (what its
boxes hit where no object is).

Box convention: every box is the tight box of the pasted object's pixels
with alpha > 0.5, ``(x1, y1, x2, y2)`` in pixels with ``x2, y2``
exclusive, stored in COCO ``bbox`` as ``[x1, y1, x2 - x1, y2 - y1]``
(integer valued floats). ``area`` is the number of those pixels. A later
object may hide a little of an earlier one (boxes overlap with IoU < 0.3 and a
later mask hides at most 20% of an earlier one's pixels); the earlier box
stays the box of its whole pasted mask. Each image entry also names its
``background`` (the scikit-image picture it is a crop of): several of the
photographs hold real, unlabeled objects (coins, a cup, faces) that an
unsupervised method may rightly find, so benchmarks can report them
apart from the textures.

Layout under ``out``::

    manifest.json           seed, counts, options, subset ids, sha256s
    unlabeled/unlabeled.json, unlabeled/images/000001.png ...
    unlabeled/unlabeled_gt.json
                            the unlabeled images' withheld boxes, only to
                            score the priors of a pretraining on them
    object_centric/object_centric.json, object_centric/images/...
                            (only with ``num_object_centric > 0``)
    train/train.json, train/train_1pct.json, train/train_10pct.json,
    train/images/...
    val/val.json, val/images/...

Everything is a function of ``seed`` (PNG is lossless, so the bytes are
too): image ``i`` of a split uses its own generator
``default_rng([seed, split_index, i])``, so changing one split's count
leaves the other splits' images unchanged. Val objects come from a
disjoint fifth of the digit scans.
"""
import hashlib
import json
import os
import os.path as osp
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.utils import ProgressBar

from mmdet_joindet.datasets.photos import PHOTO_NAMES, load_photos, photo_crop
from mmdet_joindet.datasets.splits import draw_labeled_ids, split_coco_dict
from mmdet_joindet.utils.atomic import write_bytes_atomic

DIGIT_CLASSES = tuple(str(d) for d in range(10))
# Textures of scikit-image's data folder; absent ones (e.g. 'rough_wall' in
# scikit-image 0.26) are skipped by ``load_photos``.
TEXTURE_NAMES = ('brick', 'grass', 'gravel', 'rough_wall')
SPLITS = ('unlabeled', 'train', 'val')
SUBSET_PCTS = (('train_1pct', 0.01), ('train_10pct', 0.1))

MAX_OBJECTS = 6
SIZE_RANGE = (0.08, 0.6)  # object side / image side, drawn log-uniform
MIN_SIDE = 8  # pixels: one digit-scan pixel per image pixel at least
MAX_IOU = 0.3  # with every earlier box of the image
MAX_COVER = 0.2  # of an earlier object's mask pixels a later one may hide
MAX_TRIES = 20  # placements tried per object before it is dropped
# Digit intensity (0..1 after /16, cubic-upscaled) above which a pixel is
# object. 0.4 keeps thin strokes: the tight box of every one of the 1,797
# scans is >= 1/3 filled at 8 to 60 px.
DIGIT_THR = 0.4
FEATHER_SIGMA = (0.5, 0.025)  # Gaussian sigma = max(a, b * object side)
VAL_DIGIT_FRACTION = 0.2
# The ``object_centric/`` split: one digit per image, its side uniform in
# OBJECT_SIDE of the image side, its centre within OBJECT_SHIFT of the
# image centre; image ``i`` uses ``default_rng([seed, CENTRIC_INDEX, i])``
# (0..2 are the SPLITS, 3 the digit permutation).
OBJECT_SIDE = (0.4, 0.8)
OBJECT_SHIFT = 0.15
CENTRIC_INDEX = 4


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump_json(obj, path: str) -> str:
    """Write ``obj`` as json atomically; returns the sha256 of the file."""
    data = json.dumps(obj).encode()
    write_bytes_atomic(path, data)
    return _sha256(data)


@lru_cache(maxsize=1)
def _backgrounds() -> Tuple[Tuple[str, np.ndarray], ...]:
    """``(name, image)`` of scikit-image's photos and textures that load,
    BGR uint8 (loaded once)."""
    return tuple((name, photo) for name in PHOTO_NAMES + TEXTURE_NAMES
                 for photo in load_photos((name, )))


@lru_cache(maxsize=1)
def _digits() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digit scans ``[1797, 8, 8]`` float32 in 0..1, labels."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    return (digits.images.astype(np.float32) / 16,
            digits.target.astype(np.int64))


def _tight_box(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """``(x1, y1, x2, y2)`` (exclusive) of a bool ``[H, W]`` mask, or None."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    y1, y2 = np.flatnonzero(rows)[[0, -1]]
    x1, x2 = np.flatnonzero(cols)[[0, -1]]
    return int(x1), int(y1), int(x2) + 1, int(y2) + 1


def _cover(new: np.ndarray, old: np.ndarray) -> float:
    """The fraction of bool mask ``old``'s pixels that ``new`` covers."""
    return float((new & old).sum()) / float(old.sum())


def _place(
    rng: np.random.Generator, size: int, scan: np.ndarray,
    earlier: List[Tuple[Tuple[int, int, int, int], np.ndarray]]
) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Try to place one digit scan; returns its hard and feathered alphas.

    Both are float32 ``[size, size]`` in 0..1. The side is log-uniform in
    ``SIZE_RANGE`` of ``size`` (at least ``MIN_SIDE``), the aspect ratio
    in 0.75..1.33. Tries ``MAX_TRIES`` positions and returns None when none
    has IoU < ``MAX_IOU`` with every earlier box and hides at most
    ``MAX_COVER`` of every earlier mask. ``earlier`` holds the
    ``(box, bool mask)`` of the hard masks (so both blends draw the same
    layout); the accepted one is appended.
    """
    lo, hi = np.log(SIZE_RANGE[0] * size), np.log(SIZE_RANGE[1] * size)
    for _ in range(MAX_TRIES):
        side = max(float(np.exp(rng.uniform(lo, hi))), MIN_SIDE)
        aspect = float(np.exp(rng.uniform(np.log(0.75), np.log(4 / 3))))
        pw = min(size, max(MIN_SIDE, int(round(side * np.sqrt(aspect)))))
        ph = min(size, max(MIN_SIDE, int(round(side / np.sqrt(aspect)))))
        x = int(rng.integers(0, size - pw + 1))
        y = int(rng.integers(0, size - ph + 1))
        hard, soft = _alphas(scan, (x, y, pw, ph), size, side)
        mask = hard > 0.5
        box = _tight_box(mask)
        if box is None or not (soft > 0.5).any():
            continue
        if earlier:
            # float64: the integer pixel boxes' IoU exactly
            iou = bbox_overlaps(
                torch.tensor([box], dtype=torch.float64),
                torch.tensor([b for b, _ in earlier], dtype=torch.float64))
            if iou.max() >= MAX_IOU or any(
                    _cover(mask, m) > MAX_COVER for _, m in earlier):
                continue
        earlier.append((box, mask))
        return hard, soft
    return None


def _alphas(scan: np.ndarray, rect: Tuple[int, int, int, int], size: int,
            side: float) -> Tuple[np.ndarray, np.ndarray]:
    """The hard and feathered alphas of ``scan`` scaled into ``rect``
    ``(x, y, w, h)`` of a ``size`` px image, float32 ``[size, size]``."""
    x, y, w, h = rect
    up = cv2.resize(scan, (w, h), interpolation=cv2.INTER_CUBIC)
    hard = np.zeros((size, size), np.float32)
    hard[y:y + h, x:x + w] = up > DIGIT_THR
    sigma = max(FEATHER_SIGMA[0], FEATHER_SIGMA[1] * side)
    return hard, cv2.GaussianBlur(hard, (0, 0), sigma)


def _colour(rng: np.random.Generator, img: np.ndarray, alpha: np.ndarray,
            blend: str, contrast: Tuple[float, float]) -> np.ndarray:
    """The BGR colour of one object (float ``[3]``).

    ``'hard'``: uniform in 0..255. ``'feather'``: the alpha-weighted mean
    colour of the background under the object, moved along a random
    direction by a distance (L2, BGR) uniform in ``contrast``, towards
    whichever side (+/-) stays farther after clipping to 0..255. Draws the
    same random numbers in both modes.
    """
    random_colour = rng.uniform(0, 255, 3)
    direction = rng.normal(size=3)
    direction /= max(np.linalg.norm(direction), 1e-6)
    dist = rng.uniform(*contrast)
    if blend == 'hard':
        return random_colour
    mean = (img * alpha[..., None]).sum((0, 1)) / alpha.sum()
    cands = [np.clip(mean + s * dist * direction, 0, 255) for s in (1, -1)]
    return max(cands, key=lambda c: float(np.linalg.norm(c - mean)))


def _scene(
    rng: np.random.Generator, size: int, scans: np.ndarray, labels: np.ndarray,
    blend: str, contrast: Tuple[float, float],
    backgrounds: Sequence[Tuple[str, np.ndarray]]
) -> Tuple[np.ndarray, List[dict], List[np.ndarray], str]:
    """Draw one image.

    Returns:
        tuple: the BGR uint8 image ``[size, size, 3]``; one
        ``dict(bbox=[x, y, w, h], category_id, area)`` per object (COCO
        box, see the module docstring); each object's alpha, float32
        ``[size, size]`` in 0..1, as pasted; and the name of the
        background (scikit-image's).
    """
    names, photos = zip(*backgrounds)
    img, index = photo_crop(rng, size, size, list(photos))
    objects, alphas, earlier = [], [], []
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        k = int(rng.integers(len(scans)))
        placed = _place(rng, size, scans[k], earlier)
        if placed is None:
            continue
        alpha = placed[0] if blend == 'hard' else placed[1]
        objects.append(_paste(rng, img, alpha, labels[k], blend, contrast))
        alphas.append(alpha)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img, objects, alphas, names[index]


def _object_centric(
    rng: np.random.Generator, size: int, scans: np.ndarray, labels: np.ndarray,
    blend: str, contrast: Tuple[float, float],
    backgrounds: Sequence[Tuple[str, np.ndarray]]
) -> Tuple[np.ndarray, List[dict], List[np.ndarray], str]:
    """Draw one image of the ``object_centric/`` split.

    One digit, its side uniform in ``OBJECT_SIDE`` of ``size`` (aspect
    0.75..1.33), its centre uniform within ``OBJECT_SHIFT * size`` of the
    image centre (clipped into the image), blended as in :func:`_scene`.
    These images play the part ImageNet's photographs play for the paper's
    SwAV backbone: one large, roughly centred object per image. Returns
    what :func:`_scene` returns, with exactly one object.
    """
    names, photos = zip(*backgrounds)
    img, index = photo_crop(rng, size, size, list(photos))
    k = int(rng.integers(len(scans)))
    side = float(rng.uniform(*OBJECT_SIDE)) * size
    aspect = float(np.exp(rng.uniform(np.log(0.75), np.log(4 / 3))))
    w = min(size, int(round(side * np.sqrt(aspect))))
    h = min(size, int(round(side / np.sqrt(aspect))))
    cx, cy = size / 2 + rng.uniform(-OBJECT_SHIFT, OBJECT_SHIFT, 2) * size
    x = int(np.clip(round(cx - w / 2), 0, size - w))
    y = int(np.clip(round(cy - h / 2), 0, size - h))
    hard, soft = _alphas(scans[k], (x, y, w, h), size, side)
    alpha = hard if blend == 'hard' else soft
    obj = _paste(rng, img, alpha, labels[k], blend, contrast)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img, [obj], [alpha], names[index]


def _paste(rng: np.random.Generator, img: np.ndarray, alpha: np.ndarray,
           label: int, blend: str, contrast: Tuple[float, float]) -> dict:
    """Blend one object of ``alpha`` (float32 ``[H, W]``, 0..1) into the
    float ``img`` ``[H, W, 3]`` in place, coloured by :func:`_colour`.

    Returns:
        dict: ``bbox=[x, y, w, h]`` (the tight box of ``alpha > 0.5``, see
        the module docstring), ``category_id=label + 1``, ``area``.
    """
    rx1, ry1, rx2, ry2 = _tight_box(alpha > 0)  # where it paints
    a = alpha[ry1:ry2, rx1:rx2, None]
    region = img[ry1:ry2, rx1:rx2]
    colour = _colour(rng, region, a[..., 0], blend, contrast)
    if blend != 'none':  # 'none': the same draws and box, nothing painted
        img[ry1:ry2, rx1:rx2] = region * (1 - a) + colour * a
    x1, y1, x2, y2 = _tight_box(alpha > 0.5)
    return dict(
        bbox=[float(x1), float(y1),
              float(x2 - x1),
              float(y2 - y1)],
        category_id=int(label) + 1,
        area=float((alpha > 0.5).sum()))


def build_proxy_dataset(out: str,
                        size: int = 128,
                        num_unlabeled: int = 2000,
                        num_train: int = 500,
                        num_val: int = 200,
                        num_object_centric: int = 0,
                        seed: int = 0,
                        blend: str = 'feather',
                        contrast: Tuple[float, float] = (24., 64.),
                        backgrounds: Union[None, str, Sequence[str]] = None,
                        keep_masks: bool = False,
                        progress: bool = False) -> Dict:
    """Write the digits-on-photos proxy detection set under ``out``.

    See the module docstring for the layout, the box convention and the
    blending. ``train_1pct.json`` and ``train_10pct.json`` are two separate
    draws without replacement from the train image ids, each DETReg's
    ``np.random.default_rng(seed).choice(ids, max(1, round(n * pct)),
    replace=False)`` (:func:`~mmdet_joindet.datasets.splits.
    draw_labeled_ids`, ``mode='detreg'``; listed in id order); they are
    not nested and not disjoint.

    Args:
        out (str): Output folder (created; existing files are overwritten,
            stale extra images are left alone).
        size (int): Side of the square images in pixels. Defaults to 128.
        num_unlabeled (int): Images of ``unlabeled/``, whose json has no
            annotations (``unlabeled_gt.json`` beside it has them, to
            score priors). Defaults to 2000.
        num_train (int): Images of ``train/``. Defaults to 500.
        num_val (int): Images of ``val/``. Defaults to 200.
        num_object_centric (int): Images of ``object_centric/``, an
            unlabeled split (one large digit near the centre of each, see
            :func:`_object_centric`; no annotations), drawn from the
            digits of ``unlabeled/`` and ``train/``. 0 (the default) writes
            none; the other splits do not depend on it.
        seed (int): Seed of everything. Defaults to 0.
        blend (str): ``'feather'`` (blurred mask edges, colour near the
            local background), ``'hard'`` (binary mask, random colour:
            favours selective search) or ``'none'`` (``'feather'``'s
            annotations on the bare backgrounds: chance level). Defaults
            to ``'feather'``.
        contrast (tuple[float, float]): Range of the L2 (BGR, 0..255)
            distance between a feathered object's colour and the mean
            background under it. Unused by ``'hard'``. Defaults to
            (24, 64).
        backgrounds (Sequence[str], optional): Names of the scikit-image
            pictures to crop backgrounds from (``PHOTO_NAMES`` and
            ``TEXTURE_NAMES`` that load here). None uses all of them.
            ``TEXTURE_NAMES`` alone (or ``'textures'``: those that load
            here) gives scenes whose only objects are the digits.
        keep_masks (bool): Also return every object's alpha (for tests).
            Defaults to False.
        progress (bool): Show mmengine's progress bar (with an ETA) over
            the images. Defaults to False.

    Returns:
        dict: ``manifest`` (as written to ``out/manifest.json``), ``coco``
        (split or subset name -> the COCO dict written) and, with
        ``keep_masks``, ``masks``: split -> one list per image (in image
        order) of its objects' float32 ``[size, size]`` alphas, in the
        order of that image's annotations (unlabeled included).
    """
    if blend not in ('feather', 'hard', 'none'):
        raise ValueError(
            f"blend must be 'feather', 'hard' or 'none', got {blend!r}")
    counts = dict(unlabeled=num_unlabeled, train=num_train, val=num_val)
    if size < 4 * MIN_SIDE or min(counts.values()) < 1:
        raise ValueError(f'need size >= {4 * MIN_SIDE} and >= 1 image per '
                         f'split, got size={size}, counts={counts}')
    if num_object_centric < 0:
        raise ValueError(f'need num_object_centric >= 0, got '
                         f'{num_object_centric}')
    if not 0 < contrast[0] <= contrast[1]:
        raise ValueError(f'need 0 < contrast[0] <= contrast[1], got '
                         f'{contrast}')
    available = dict(_backgrounds())
    if backgrounds is None:
        backgrounds = list(available)
    elif isinstance(backgrounds, str) and backgrounds == 'textures':
        backgrounds = [n for n in TEXTURE_NAMES if n in available]
    unknown = [n for n in backgrounds if n not in available]
    if unknown or not backgrounds:
        raise ValueError(f'unknown or unavailable backgrounds {unknown}; '
                         f'choose among {sorted(available)}')
    chosen = [(n, available[n]) for n in backgrounds]
    scans, labels = _digits()
    perm = np.random.default_rng([seed, len(SPLITS)]).permutation(len(scans))
    n_val = int(round(VAL_DIGIT_FRACTION * len(scans)))
    pools = dict(
        unlabeled=perm[n_val:],
        train=perm[n_val:],
        val=perm[:n_val],
        object_centric=perm[n_val:])
    # split, its index in the seed, its image count, its drawer
    plan = [(split, s, counts[split], _scene)
            for s, split in enumerate(SPLITS)]
    if num_object_centric:
        plan.append(('object_centric', CENTRIC_INDEX, num_object_centric,
                     _object_centric))
    categories = [dict(id=k + 1, name=n) for k, n in enumerate(DIGIT_CLASSES)]
    result = dict(coco={}, masks={})
    sha = {}
    bar = ProgressBar(sum(p[2] for p in plan)) if progress else None
    for split, s, count, draw in plan:
        os.makedirs(osp.join(out, split, 'images'), exist_ok=True)
        pool = pools[split]
        images, annotations, masks = [], [], []
        for i in range(count):
            rng = np.random.default_rng([seed, s, i])
            img, objects, alphas, background = draw(rng, size, scans[pool],
                                                    labels[pool], blend,
                                                    contrast, chosen)
            name = f'{i + 1:06d}.png'
            ok, buf = cv2.imencode('.png', img)
            assert ok, 'PNG encoding failed'
            write_bytes_atomic(
                osp.join(out, split, 'images', name), buf.tobytes())
            images.append(
                dict(
                    id=i + 1,
                    file_name=name,
                    height=size,
                    width=size,
                    background=background))
            for obj in objects:
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=i + 1,
                        iscrowd=0,
                        **obj))
            if keep_masks:
                masks.append(alphas)
            if bar is not None:
                bar.update()
        if split == 'unlabeled':
            # the withheld boxes, to score pretraining priors against
            # (tools/analysis_tools/score_priors.py); never trained on
            gt = dict(
                images=images, annotations=annotations, categories=categories)
            result['coco']['unlabeled_gt'] = gt
            rel = 'unlabeled/unlabeled_gt.json'
            sha[rel] = _dump_json(gt, osp.join(out, rel))
        if split in ('unlabeled', 'object_centric'):
            annotations = []
        coco = dict(
            images=images, annotations=annotations, categories=categories)
        result['coco'][split] = coco
        result['masks'][split] = masks
        rel = f'{split}/{split}.json'
        sha[rel] = _dump_json(coco, osp.join(out, rel))
    if bar is not None:
        print(flush=True)  # end the bar's line

    train = result['coco']['train']
    ids = np.array([im['id'] for im in train['images']])
    subsets = {}
    for name, pct in SUBSET_PCTS:
        # at least one image (a tiny set's 1% rounds to none)
        subsets[name] = draw_labeled_ids(
            ids, max(pct, 1 / len(ids)), seed, mode='detreg')
        coco, _ = split_coco_dict(train, subsets[name])
        result['coco'][name] = coco
        rel = f'train/{name}.json'
        sha[rel] = _dump_json(coco, osp.join(out, rel))

    counts.update({n: len(v) for n, v in subsets.items()})
    if num_object_centric:
        counts['object_centric'] = num_object_centric
    counts['objects'] = {
        k: len(result['coco'][k]['annotations'])
        for k in ('train', 'val')
    }
    manifest = dict(
        seed=seed,
        counts=counts,
        options=dict(
            size=size,
            blend=blend,
            contrast=list(contrast),
            max_objects=MAX_OBJECTS,
            size_range=list(SIZE_RANGE),
            max_iou=MAX_IOU,
            max_cover=MAX_COVER,
            digit_thr=DIGIT_THR,
            backgrounds=list(backgrounds)),
        subsets=subsets,
        sha256=sha)
    _dump_json(manifest, osp.join(out, 'manifest.json'))
    result['manifest'] = manifest
    if not keep_masks:
        del result['masks']
    return result
