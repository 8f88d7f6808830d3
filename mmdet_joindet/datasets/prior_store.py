# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""On-disk store of the object priors ``R_0, R_1, ...`` of JoinDet.

JoinDet (paper, Sec. 2, Steps 1-3 and eq. 8) supervises pretraining with
object priors that the model regenerates every few epochs: ``R_0`` are the
region priors of the frozen backbone, and each update writes
``R_n = BS(P^r_n ++ P^i_n, R_{n-1})``. This module keeps every round on
disk so that all dataloader workers on all ranks read the same round, a
checkpoint names the round it trained on, and a crash never corrupts the
priors in use.

Layout under ``root``::

    root/
      CURRENT                     text, e.g. "3\\n": the committed round
      round_0000/                 one directory per written round
        offsets.npy               int64   [num_images + 1], offsets[0] == 0
        boxes.npy                 float32 [num_boxes, 4]
        scores.npy                float32 [num_boxes]
        meta.json                 round, num_images, num_boxes, created,
                                  fingerprint, info, format_version
      round_0001/
      .round_0002.tmp-<pid>-<hex>   a write in progress (or killed)
      .round_0001.old-<pid>-<hex>   a round being replaced or deleted
      .CURRENT.tmp-<pid>-<hex>      a commit in progress (or killed)

Image ``i`` of a round owns rows ``offsets[i]:offsets[i + 1]`` of
``boxes`` and ``scores`` (CSR layout: no per-image Python objects, so the
memory is that of the arrays, and readers map them with
``np.load(mmap_mode='r')``). Boxes are ``(x1, y1, x2, y2)`` in pixels of the
**original** image (before any resize or flip), ``x1 <= x2``,
``y1 <= y2``; the pipeline's geometric transforms move them.

Crash safety: a round is written into a hidden temp directory, every file
and the directory are fsynced, then the directory is renamed to
``round_NNNN`` in one ``rename(2)``; ``CURRENT`` is only ever replaced
with ``os.replace`` from an fsynced temp file. A process killed at any
point leaves the committed round intact; hidden leftovers are ignored by
readers and removed by :meth:`PriorStore.cleanup_stale`. The committed
round is immutable (readers may be mapping it): write a new round number
instead, or :meth:`PriorStore.rewind` first.

The store has a single writer (rank 0 in distributed training): the
methods that write (``write_round*``, ``commit``, ``rewind``,
``load_state_dict``, ``cleanup_stale``) must not run concurrently from
several processes. Readers (:class:`PriorReader`, one per dataset copy)
may run anywhere the root is visible.
"""
import json
import os
import os.path as osp
import re
import secrets
import shutil
from datetime import datetime, timezone
from operator import index
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmdet_joindet.utils.atomic import fsync_dir, write_atomic, write_new_file

ArrayLike = Union[np.ndarray, torch.Tensor]

FORMAT_VERSION = 1
CURRENT_FILE = 'CURRENT'
META_FILE = 'meta.json'
ARRAY_FILES = ('offsets.npy', 'boxes.npy', 'scores.npy')

_ROUND_RE = re.compile(r'^round_(\d+)$')
_STALE_RE = re.compile(r'^\.(?:round_\d+\.(?:tmp|old)|CURRENT\.tmp)'
                       r'-(\d+)-[0-9a-f]+$')
# Rows per chunk when validating arrays that may be memory-mapped.
_CHUNK = 1 << 20


def _round_dirname(round_idx: int) -> str:
    """``round_0003`` for round 3 (at least four digits)."""
    return f'round_{round_idx:04d}'


def _check_round_idx(round_idx: Any) -> int:
    is_int = isinstance(round_idx, (int, np.integer))
    if not is_int or isinstance(round_idx, bool) or round_idx < 0:
        raise ValueError(f'round_idx must be an int >= 0, got {round_idx!r}')
    return int(round_idx)


def _to_numpy(x: Any) -> np.ndarray:
    """A numpy view or copy of ``x``; torch tensors are moved to the CPU."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.float()  # numpy has no bfloat16; stored as float32 anyway
        return x.numpy()
    return np.asarray(x)


def _hidden_name(name: str, kind: str) -> str:
    return f'.{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}'


def _first_bad(mask: np.ndarray, start: int,
               offsets: np.ndarray) -> Tuple[int, int]:
    """(image index, row) of the first True entry of ``mask``, which
    covers the rows from ``start`` on."""
    row = start + int(np.flatnonzero(mask)[0])
    return int(np.searchsorted(offsets, row, side='right')) - 1, row


def _check_arrays(offsets: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
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


def _check_values(offsets: np.ndarray, boxes: np.ndarray,
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
        b, s = _to_numpy(b), _to_numpy(s)
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


class PriorStore:
    """The rounds of priors under ``root`` and its ``CURRENT`` pointer.

    See the module docstring for the layout and the crash-safety rules.
    The hook that updates priors writes round ``n + 1`` with
    :meth:`write_round` and makes it visible with :meth:`commit`; datasets
    read through :class:`PriorReader`; :meth:`state_dict` goes into the
    runner checkpoint and :meth:`load_state_dict` re-points ``CURRENT`` at
    the round a resumed checkpoint trained on.

    Args:
        root (str): Directory of the store; created on the first write.
    """

    def __init__(self, root: str) -> None:
        self.root = osp.abspath(os.fspath(root))

    def __repr__(self) -> str:
        return f'{type(self).__name__}(root={self.root!r})'

    def round_dir(self, round_idx: int) -> str:
        """Directory of round ``round_idx`` (it may not exist)."""
        return osp.join(self.root, _round_dirname(round_idx))

    # ---- reading -------------------------------------------------------

    def current_round(self) -> Optional[int]:
        """The committed round, or None when nothing is committed."""
        path = osp.join(self.root, CURRENT_FILE)
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        if not text.strip().isdigit():
            raise ValueError(f'{path} must hold a round number, got '
                             f'{text[:40]!r}')
        return int(text)

    def rounds(self) -> List[int]:
        """Indices of the complete rounds on disk, ascending."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            match = _ROUND_RE.match(name)
            if match and osp.isdir(osp.join(self.root, name)):
                found.append(int(match.group(1)))
        return sorted(found)

    def load(self,
             round_idx: Optional[int] = None,
             expected_fingerprint: Optional[str] = None) -> PriorRound:
        """Open round ``round_idx`` (None: the committed one), validated.

        The arrays are memory-mapped read-only. Checks the meta data and
        the arrays' dtypes, shapes and offsets (O(num_images)); box values
        were checked when the round was written.

        Args:
            round_idx (int, optional): The round. Defaults to ``CURRENT``.
            expected_fingerprint (str, optional): When given, the round's
                fingerprint must equal it (the priors belong to this image
                list).
        """
        if round_idx is None:
            round_idx = self.current_round()
            if round_idx is None:
                raise FileNotFoundError(
                    f'no committed object priors under {self.root} (no '
                    f'{CURRENT_FILE} file): compute the initial priors R0 '
                    'first and commit them')
        round_idx = _check_round_idx(round_idx)
        path = self.round_dir(round_idx)
        if not osp.isdir(path):
            raise FileNotFoundError(
                f'round {round_idx} of the object priors does not exist: '
                f'{path} is missing (rounds on disk: {self.rounds()})')
        meta = self._read_meta(path, round_idx)
        arrays = []
        for name in ARRAY_FILES:
            file = osp.join(path, name)
            try:
                arrays.append(np.load(file, mmap_mode='r'))
            except (OSError, ValueError) as e:
                raise ValueError(f'cannot read {file}: {e}') from e
        offsets, boxes, scores = arrays
        _check_arrays(offsets, boxes, scores,
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
                f'round {round_idx} under {self.root} was computed for '
                f'another image list: fingerprint {meta["fingerprint"]!r}, '
                f'expected {expected_fingerprint!r}; point the dataset at '
                'its own prior store or recompute R0')
        return PriorRound(offsets, boxes, scores, meta, path)

    @staticmethod
    def _read_meta(path: str, round_idx: int) -> dict:
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

    # ---- writing -------------------------------------------------------

    def write_round(self,
                    round_idx: int,
                    boxes_list: Sequence[ArrayLike],
                    scores_list: Sequence[ArrayLike],
                    fingerprint: str,
                    info: Optional[Dict[str, Any]] = None,
                    overwrite: bool = False) -> str:
        """Write round ``round_idx`` from per-image arrays, atomically.

        Args:
            round_idx (int): Round index ``n >= 0`` (``R_n``).
            boxes_list (Sequence[np.ndarray | Tensor]): Per image, in the
                dataset's order, ``[k_i, 4]`` ``(x1, y1, x2, y2)`` in
                original-image pixels; ``k_i`` may be 0.
            scores_list (Sequence[np.ndarray | Tensor]): Per image ``[k_i]``.
            fingerprint (str): Identifies the dataset's image list; readers
                may demand it (``expected_fingerprint``).
            info (dict, optional): JSON-serialisable notes kept in
                ``meta.json`` (epoch, generator settings, ...).
            overwrite (bool): Replace an existing, uncommitted round.
                Defaults to False (an existing round is an error).

        Returns:
            str: The round's directory. The round is not visible to readers
            until :meth:`commit`.
        """
        offsets, boxes, scores = flatten_priors(boxes_list, scores_list)
        return self._write(round_idx, offsets, boxes, scores, fingerprint,
                           info, overwrite)

    def write_round_arrays(self,
                           round_idx: int,
                           offsets: ArrayLike,
                           boxes: ArrayLike,
                           scores: ArrayLike,
                           fingerprint: str,
                           info: Optional[Dict[str, Any]] = None,
                           overwrite: bool = False) -> str:
        """:meth:`write_round` from already flattened (CSR) arrays.

        Args:
            offsets (np.ndarray | Tensor): Integer ``[num_images + 1]``,
                ``offsets[0] == 0``, non-decreasing, ``offsets[-1] ==
                num_boxes``; image ``i`` owns rows ``offsets[i]:offsets[i +
                1]``.
            boxes (np.ndarray | Tensor): ``[num_boxes, 4]`` ``(x1, y1, x2,
                y2)`` in original-image pixels.
            scores (np.ndarray | Tensor): ``[num_boxes]``.

        The other arguments and the return value are :meth:`write_round`'s.
        """
        offsets, boxes, scores = (_to_numpy(offsets), _to_numpy(boxes),
                                  _to_numpy(scores))
        if not np.issubdtype(offsets.dtype, np.integer):
            raise ValueError(f'offsets must hold integers, got '
                             f'{offsets.dtype}')
        if boxes.ndim == 1 and boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        offsets = offsets.astype(np.int64, copy=False)
        with np.errstate(over='ignore'):  # too large -> inf -> checked later
            boxes = boxes.astype(np.float32, copy=False)
            scores = scores.astype(np.float32, copy=False)
        return self._write(round_idx, offsets, boxes, scores, fingerprint,
                           info, overwrite)

    def _write(self, round_idx: int, offsets: np.ndarray, boxes: np.ndarray,
               scores: np.ndarray, fingerprint: str,
               info: Optional[Dict[str, Any]], overwrite: bool) -> str:
        round_idx = _check_round_idx(round_idx)
        if not isinstance(fingerprint, str):
            raise TypeError(f'fingerprint must be a str, got '
                            f'{type(fingerprint).__name__}')
        _check_arrays(offsets, boxes, scores, ('offsets', 'boxes', 'scores'))
        _check_values(offsets, boxes, scores)
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

        name = _round_dirname(round_idx)
        final = osp.join(self.root, name)
        self._check_replaceable(round_idx, final, overwrite)
        os.makedirs(self.root, exist_ok=True)
        tmp = osp.join(self.root, _hidden_name(name, 'tmp'))
        os.mkdir(tmp)
        try:
            for file, array in zip(ARRAY_FILES, (offsets, boxes, scores)):
                write_new_file(
                    osp.join(tmp, file),
                    lambda f, a=array: np.save(f, a, allow_pickle=False))
            # meta.json last: a round directory always has all its files
            write_new_file(
                osp.join(tmp, META_FILE), lambda f: f.write(meta_bytes))
            fsync_dir(tmp)
            self._check_replaceable(round_idx, final, overwrite)
            if osp.lexists(final):
                old = osp.join(self.root, _hidden_name(name, 'old'))
                os.rename(final, old)
                try:
                    os.rename(tmp, final)
                except BaseException:
                    os.rename(old, final)  # put the old round back
                    raise
                fsync_dir(self.root)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.root)
        return final

    def _check_replaceable(self, round_idx: int, final: str,
                           overwrite: bool) -> None:
        if not osp.lexists(final):
            return
        if not overwrite:
            raise FileExistsError(
                f'round {round_idx} of the object priors already exists '
                f'({final}); pass overwrite=True to replace it')
        if self.current_round() == round_idx:
            raise ValueError(
                f'round {round_idx} is the committed round of {self.root} '
                '(readers may be mapping it) and cannot be overwritten: '
                'write a new round number, or rewind() to an earlier round '
                'first')

    def commit(self, round_idx: int) -> None:
        """Atomically point ``CURRENT`` at written round ``round_idx``.

        The round is loaded (validated) first. ``CURRENT`` is replaced with
        ``os.replace`` from an fsynced temp file, so it always holds either
        the old or the new round number. Readers switch on their next
        :meth:`PriorReader.get`.
        """
        round_idx = _check_round_idx(round_idx)
        self.load(round_idx)
        self._point_current(round_idx)

    def _point_current(self, round_idx: int) -> None:
        data = f'{round_idx}\n'.encode()
        write_atomic(
            osp.join(self.root, CURRENT_FILE),
            lambda tmp: write_new_file(tmp, lambda f: f.write(data)),
            tmp=osp.join(self.root, _hidden_name(CURRENT_FILE, 'tmp')))

    def rewind(self, round_idx: int, prune_after: bool = False) -> None:
        """Re-point ``CURRENT`` at an older round (resume from a checkpoint).

        Args:
            round_idx (int): An existing round ``<=`` the committed one.
            prune_after (bool): Also delete every round after
                ``round_idx``. Defaults to False: they stay on disk (and are
                overwritten when training writes those rounds again).
        """
        round_idx = _check_round_idx(round_idx)
        current = self.current_round()
        if current is not None and round_idx > current:
            raise ValueError(f'cannot rewind {self.root} from round '
                             f'{current} to the later round {round_idx}: '
                             'use commit()')
        if current != round_idx:
            self.commit(round_idx)
        if prune_after:
            for later in self.rounds():
                if later > round_idx:
                    self._remove_round(later)

    def _remove_round(self, round_idx: int) -> None:
        # rename first: a kill mid-rmtree must not leave a partial round
        name = _round_dirname(round_idx)
        old = osp.join(self.root, _hidden_name(name, 'old'))
        os.rename(osp.join(self.root, name), old)
        fsync_dir(self.root)
        shutil.rmtree(old, ignore_errors=True)

    def cleanup_stale(self) -> List[str]:
        """Delete leftovers of killed writes and commits; never a round.

        Removes the hidden ``.round_*.tmp-*``, ``.round_*.old-*`` and
        ``.CURRENT.tmp-*`` entries of processes that are no longer alive
        on this host (entries of live processes, this one included, are
        kept).

        Returns:
            list[str]: The removed paths.
        """
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        removed = []
        for name in names:
            match = _STALE_RE.match(name)
            if match is None or _pid_alive(int(match.group(1))):
                continue
            path = osp.join(self.root, name)
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            elif osp.lexists(path):
                os.remove(path)
            removed.append(path)
        return removed

    # ---- checkpoints ---------------------------------------------------

    def state_dict(self) -> dict:
        """``root``, ``current_round``, ``rounds`` and the committed round's
        ``fingerprint`` (None when nothing is committed)."""
        current = self.current_round()
        fingerprint = None
        if current is not None:
            fingerprint = self._read_meta(self.round_dir(current),
                                          current)['fingerprint']
        return dict(
            root=self.root,
            current_round=current,
            rounds=self.rounds(),
            fingerprint=fingerprint)

    def load_state_dict(self, state_dict: dict) -> None:
        """Point ``CURRENT`` at the checkpoint's round.

        The round must exist under this store's root (``state_dict['root']``
        is informational: the store may have moved) with the checkpoint's
        fingerprint. An older round is reached with :meth:`rewind` (later
        rounds stay on disk), a newer one with :meth:`commit`. Writes
        ``CURRENT``: call it on one process and synchronise before readers
        rely on it.
        """
        round_idx = state_dict.get('current_round')
        if round_idx is None:
            return
        round_idx = _check_round_idx(round_idx)
        self.load(round_idx, state_dict.get('fingerprint'))
        current = self.current_round()
        if current is not None and round_idx < current:
            self.rewind(round_idx)
        elif current != round_idx:
            self.commit(round_idx)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: alive, owned by someone else
        return True
    return True
