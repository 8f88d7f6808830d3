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

Each ``round_NNNN`` folder holds one round in the format of
:mod:`.prior_round` (CSR arrays of boxes in original-image pixels, read
memory-mapped).

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
import os
import os.path as osp
import re
import secrets
import shutil
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from mmdet_joindet.utils.atomic import fsync_dir, write_bytes_atomic
from .prior_round import (ArrayLike, PriorRound, check_arrays, check_values,
                          flatten_priors, read_meta, read_round, round_meta,
                          to_numpy, write_round_files)

__all__ = ['PriorStore', 'PriorRound', 'flatten_priors', 'CURRENT_FILE']

CURRENT_FILE = 'CURRENT'

_ROUND_RE = re.compile(r'^round_(\d+)$')
_STALE_RE = re.compile(r'^\.(?:round_\d+\.(?:tmp|old)|CURRENT\.tmp)'
                       r'-(\d+)-[0-9a-f]+$')


def _round_dirname(round_idx: int) -> str:
    """``round_0003`` for round 3 (at least four digits)."""
    return f'round_{round_idx:04d}'


def _check_round_idx(round_idx: Any) -> int:
    is_int = isinstance(round_idx, (int, np.integer))
    if not is_int or isinstance(round_idx, bool) or round_idx < 0:
        raise ValueError(f'round_idx must be an int >= 0, got {round_idx!r}')
    return int(round_idx)


def _hidden_name(name: str, kind: str) -> str:
    return f'.{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}'


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
        return read_round(path, round_idx, expected_fingerprint)

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
        offsets, boxes, scores = (to_numpy(offsets), to_numpy(boxes),
                                  to_numpy(scores))
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
        check_arrays(offsets, boxes, scores, ('offsets', 'boxes', 'scores'))
        check_values(offsets, boxes, scores)
        meta_bytes = round_meta(round_idx, offsets, boxes, fingerprint, info)

        name = _round_dirname(round_idx)
        final = osp.join(self.root, name)
        self._check_replaceable(round_idx, final, overwrite)
        os.makedirs(self.root, exist_ok=True)
        tmp = osp.join(self.root, _hidden_name(name, 'tmp'))
        os.mkdir(tmp)
        try:
            write_round_files(tmp, offsets, boxes, scores, meta_bytes)
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
        write_bytes_atomic(
            osp.join(self.root, CURRENT_FILE),
            f'{round_idx}\n'.encode(),
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
            fingerprint = read_meta(self.round_dir(current),
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
