# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The format of one round of object priors, on disk and in memory.

A round is a folder of four files::

    offsets.npy   int64   [num_images + 1], offsets[0] == 0
    boxes.npy     float32 [num_boxes, 4]
    scores.npy    float32 [num_boxes]
    meta.json     round, num_images, num_boxes, created, fingerprint, info,
                  format_version

Image ``i`` owns rows ``offsets[i]:offsets[i + 1]`` of ``boxes`` and
``scores`` (CSR layout: no per-image Python objects, so the memory is that
of the arrays, and readers map them with ``np.load(mmap_mode='r')``).
Boxes are ``(x1, y1, x2, y2)`` in pixels of the **original** image (before
any resize or flip), ``x1 <= x2``, ``y1 <= y2``.

Here: writing one round folder (:func:`write_round_files`), reading one
(:func:`read_round`) and one image's priors (:meth:`PriorRound.get`). The
rounds, ``CURRENT``, retention and resume are :mod:`.prior_store`'s; the
reader the dataloader workers use is :mod:`.prior_reader`'s.
"""
import json
import os.path as osp
from datetime import datetime, timezone
from operator import index
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmdet_joindet.utils.atomic import fsync_dir, write_new_file

ArrayLike = Union[np.ndarray, torch.Tensor]

FORMAT_VERSION = 1
META_FILE = 'meta.json'
ARRAY_FILES = ('offsets.npy', 'boxes.npy', 'scores.npy')
# Rows per chunk when validating arrays that may be memory-mapped.
_CHUNK = 1 << 20


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view or copy of ``x``; torch tensors are moved to the CPU."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.float()  # numpy has no bfloat16; stored as float32 anyway
        return x.numpy()
    return np.asarray(x)


def _first_bad(mask: np.ndarray, start: int,
               offsets: np.ndarray) -> Tuple[int, int]:
    """(image index, row) of the first True entry of ``mask``, which
    covers the rows from ``start`` on."""
    row = start + int(np.flatnonzero(mask)[0])
    return int(np.searchsorted(offsets, row, side='right')) - 1, row


def check_arrays(offsets: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                 names: Sequence[str]) -> None:
    """Structural checks shared by writing and loading.

    Args:
        offsets (np.ndarray): int64 ``[num_images + 1]``.
        boxes (np.ndarray): float32 ``[num_boxes, 4]``.
        scores (np.ndarray): float32 ``[num_boxes]``.
        names (Sequence[str]): What error messages call the three arrays
            (their files when loading).
    """
    off_name, box_name, score_name = names
    if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) < 1:
        raise ValueError(f'{off_name} must be int64 [num_images + 1], got '
                         f'{offsets.dtype} {list(offsets.shape)}')
    if boxes.dtype != np.float32 or boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f'{box_name} must be float32 [num_boxes, 4], got '
                         f'{boxes.dtype} {list(boxes.shape)}')
    if scores.dtype != np.float32 or scores.shape != (len(boxes), ):
        raise ValueError(f'{score_name} must be float32 [num_boxes] with '
                         f'num_boxes = {len(boxes)} (rows of {box_name}), '
                         f'got {scores.dtype} {list(scores.shape)}')
    if offsets[0] != 0 or offsets[-1] != len(boxes):
        raise ValueError(f'{off_name} must start at 0 and end at num_boxes '
                         f'= {len(boxes)} (rows of {box_name}), got '
                         f'{int(offsets[0])} ... {int(offsets[-1])}')
    for start in range(0, len(offsets) - 1, _CHUNK):
        step = np.diff(offsets[start:start + _CHUNK + 1])
        if (step < 0).any():
            i = start + int(np.flatnonzero(step < 0)[0])
            raise ValueError(f'{off_name} must be non-decreasing, '
                             f'offsets[{i}] = {int(offsets[i])} > '
                             f'offsets[{i + 1}] = {int(offsets[i + 1])}')


def check_values(offsets: np.ndarray, boxes: np.ndarray,
                 scores: np.ndarray) -> None:
    """Finite values and boxes of non-negative size, else ValueError."""
    for start in range(0, len(boxes), _CHUNK):
        b = boxes[start:start + _CHUNK]
        s = scores[start:start + _CHUNK]
        bad = ~np.isfinite(b).all(axis=1) | ~np.isfinite(s)
        if bad.any():
            i, row = _first_bad(bad, start, offsets)
            raise ValueError(f'priors of image {i} hold NaN or inf: box '
                             f'{boxes[row].tolist()}, score {scores[row]}')
        bad = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
        if bad.any():
            i, row = _first_bad(bad, start, offsets)
            raise ValueError(f'a prior of image {i} has a negative size '
                             f'(x2 < x1 or y2 < y1): {boxes[row].tolist()}; '
                             'boxes must be (x1, y1, x2, y2)')


def flatten_priors(
    boxes_list: Sequence[ArrayLike], scores_list: Sequence[ArrayLike]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image priors -> the store's CSR arrays (checked).

    Args:
        boxes_list (Sequence[np.ndarray | Tensor]): Per image ``[k_i, 4]``
            ``(x1, y1, x2, y2)`` in original-image pixels (an empty array
            of any 1-D or ``[0, 4]`` shape for an image without priors).
        scores_list (Sequence[np.ndarray | Tensor]): Per image ``[k_i]``.

    Returns:
        tuple: ``offsets`` int64 ``[num_images + 1]``, ``boxes`` float32
        ``[sum k_i, 4]``, ``scores`` float32 ``[sum k_i]``.
    """
    if len(boxes_list) != len(scores_list):
        raise ValueError(f'boxes_list and scores_list must have one entry per '
                         f'image, got {len(boxes_list)} and '
                         f'{len(scores_list)}')
    boxes, scores = [], []
    counts = np.empty(len(boxes_list), dtype=np.int64)
    for i, (b, s) in enumerate(zip(boxes_list, scores_list)):
        b, s = to_numpy(b), to_numpy(s)
        if b.ndim == 1 and b.size == 0:
            b = b.reshape(0, 4)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f'boxes of image {i} must be [k, 4], got '
                             f'{list(b.shape)}')
        if s.shape != (len(b), ):
            raise ValueError(f'scores of image {i} must be [k] with k = '
                             f'{len(b)} (its boxes), got {list(s.shape)}')
        boxes.append(b)
        scores.append(s)
        counts[i] = len(b)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if boxes:
        with np.errstate(over='ignore'):  # too large -> inf -> checked later
            flat_boxes = np.concatenate(boxes).astype(np.float32, copy=False)
            flat_scores = np.concatenate(scores).astype(np.float32, copy=False)
    else:
        flat_boxes = np.zeros((0, 4), dtype=np.float32)
        flat_scores = np.zeros(0, dtype=np.float32)
    return offsets, flat_boxes, flat_scores


class PriorRound:
    """One round ``R_n`` of priors for every image, read-only.

    Built by :meth:`PriorStore.load`; the arrays are usually memory-mapped
    (``np.load(mmap_mode='r')``), so a round of millions of images costs
    only the pages that :meth:`get` touches.

    Attributes:
        round (int): The round index ``n``.
        num_images (int): Images in the round (``len(self)``).
        num_boxes (int): Priors over all images.
        fingerprint (str): The writer's identifier of the image list.
        info (dict): The writer's free-form JSON info.
        created (str): ISO-8601 UTC time of the write.
        path (str): The round's directory.
        offsets (np.ndarray): int64 ``[num_images + 1]``.
        boxes (np.ndarray): float32 ``[num_boxes, 4]``, ``(x1, y1, x2,
            y2)`` in original-image pixels.
        scores (np.ndarray): float32 ``[num_boxes]``.
    """

    def __init__(self, offsets: np.ndarray, boxes: np.ndarray,
                 scores: np.ndarray, meta: dict, path: str) -> None:
        self.offsets = offsets
        self.boxes = boxes
        self.scores = scores
        self.meta = meta
        self.path = path
        self.round = int(meta['round'])
        self.num_images = len(offsets) - 1
        self.num_boxes = len(boxes)
        self.fingerprint = meta['fingerprint']
        self.info = meta.get('info', {})
        self.created = meta.get('created', '')

    def __len__(self) -> int:
        return self.num_images

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(round={self.round}, num_images='
                f'{self.num_images}, num_boxes={self.num_boxes}, '
                f'path={self.path!r})')

    def get(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        """Priors of image ``i`` (``0 <= i < len(self)``), as copies.

        Returns:
            tuple: ``boxes`` float32 ``[k, 4]`` ``(x1, y1, x2, y2)`` in
            original-image pixels and ``scores`` float32 ``[k]`` (``k`` may
            be 0), in the order they were written.
        """
        i = index(i)
        if not 0 <= i < self.num_images:
            raise IndexError(f'image index {i} out of range for round '
                             f'{self.round} of {self.num_images} images '
                             f'({self.path})')
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        return np.array(self.boxes[start:end]), np.array(
            self.scores[start:end])

    def to_lists(self) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """All images' priors: lists of ``[k_i, 4]`` and ``[k_i]`` copies."""
        if self.num_images == 0:
            return [], []
        boxes = np.array(self.boxes)
        scores = np.array(self.scores)
        cuts = self.offsets[1:-1]
        return np.split(boxes, cuts), np.split(scores, cuts)


def read_meta(path: str, round_idx: int) -> dict:
    """The checked ``meta.json`` of the round in folder ``path``."""
    file = osp.join(path, META_FILE)
    try:
        with open(file) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'cannot read {file}: {e}') from e
    keys = ('round', 'num_images', 'num_boxes', 'fingerprint')
    if not isinstance(meta, dict) or any(k not in meta for k in keys):
        raise ValueError(f'{file} must be a JSON object with keys '
                         f'{list(keys)}')
    if meta['round'] != round_idx:
        raise ValueError(f'{file} says round {meta["round"]} but lies in '
                         f'the directory of round {round_idx}')
    return meta


def read_round(path: str,
               round_idx: int,
               expected_fingerprint: Optional[str] = None) -> 'PriorRound':
    """Open the round in folder ``path``: its meta data and its arrays,
    memory-mapped read-only and checked (dtypes, shapes, offsets:
    O(num_images); box values were checked when the round was written).

    Args:
        path (str): A round folder (``round_NNNN``).
        round_idx (int): The round it must hold.
        expected_fingerprint (str, optional): When given, the round's
            fingerprint must equal it (the priors belong to this image
            list).
    """
    meta = read_meta(path, round_idx)
    arrays = []
    for name in ARRAY_FILES:
        file = osp.join(path, name)
        try:
            arrays.append(np.load(file, mmap_mode='r'))
        except (OSError, ValueError) as e:
            raise ValueError(f'cannot read {file}: {e}') from e
    offsets, boxes, scores = arrays
    check_arrays(offsets, boxes, scores,
                 [osp.join(path, name) for name in ARRAY_FILES])
    if (len(offsets) - 1, len(boxes)) != (meta['num_images'],
                                          meta['num_boxes']):
        raise ValueError(
            f'{osp.join(path, META_FILE)} says {meta["num_images"]} '
            f'images and {meta["num_boxes"]} boxes but the arrays hold '
            f'{len(offsets) - 1} and {len(boxes)}')
    if expected_fingerprint is not None \
            and meta['fingerprint'] != expected_fingerprint:
        raise ValueError(
            f'round {round_idx} under {osp.dirname(path)} was computed for '
            f'another image list: fingerprint {meta["fingerprint"]!r}, '
            f'expected {expected_fingerprint!r}; point the dataset at '
            'its own prior store or recompute R0')
    return PriorRound(offsets, boxes, scores, meta, path)


def round_meta(round_idx: int, offsets: np.ndarray, boxes: np.ndarray,
               fingerprint: str, info: Optional[Dict[str, Any]]) -> bytes:
    """``meta.json`` of a new round, encoded; TypeError for an ``info``
    that is not a JSON-serialisable dict."""
    meta = dict(
        format_version=FORMAT_VERSION,
        round=round_idx,
        num_images=len(offsets) - 1,
        num_boxes=len(boxes),
        created=datetime.now(timezone.utc).isoformat(),
        fingerprint=fingerprint,
        info={} if info is None else info)
    try:
        if not isinstance(meta['info'], dict):
            raise TypeError(f'got {type(info).__name__}')
        meta_bytes = json.dumps(meta, indent=1, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise TypeError(f'info must be a JSON-serialisable dict: {e}') \
            from e

    return meta_bytes


def write_round_files(folder: str, offsets: np.ndarray, boxes: np.ndarray,
                      scores: np.ndarray, meta_bytes: bytes) -> None:
    """Write a round's three arrays and ``meta.json`` (last: a round folder
    always has all its files) into the new, empty ``folder``, each file and
    then the folder fsynced."""
    for file, array in zip(ARRAY_FILES, (offsets, boxes, scores)):
        write_new_file(
            osp.join(folder, file),
            lambda f, a=array: np.save(f, a, allow_pickle=False))
    # meta.json last: a round directory always has all its files
    write_new_file(osp.join(folder, META_FILE), lambda f: f.write(meta_bytes))
    fsync_dir(folder)
