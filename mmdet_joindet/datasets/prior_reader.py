# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Read the committed round of a :class:`PriorStore` from any process.

One reader lives in every copy of the dataset (each dataloader worker on
each rank); see :mod:`mmdet_joindet.datasets.prior_store` for the layout.
"""
import os
import os.path as osp
import time
from typing import Optional, Tuple

import numpy as np

from .prior_store import CURRENT_FILE, PriorRound, PriorStore

# A CURRENT whose mtime is this close to the time it was read may change
# again within the same timestamp tick (coarse kernel clocks, 1-2 s on some
# file systems) with the same size and a reused inode; while that is
# possible, PriorReader re-reads its content (git's "racy clean" rule).
_RACY_NS = 2_000_000_000


class PriorReader:
    """Per-image priors of the committed round, for dataset copies.

    Every dataloader worker (forked or unpickled, ``persistent_workers``
    included) holds its own copy. :meth:`get` does one ``os.stat`` of
    ``CURRENT`` (device, inode, size, mtime, ctime); when it changed, the
    reader re-reads the pointer and maps the newly committed round, so a
    worker started before a commit serves the new round from its next
    ``get`` on. Pickling keeps only ``root`` and ``expected_fingerprint``:
    the maps are re-opened lazily.

    On network file systems ``stat`` may lag behind a commit by the
    client's attribute-cache time; commit before the epoch's first
    ``get`` (the update hook does) on a file system with close-to-open
    consistency.

    Args:
        root (str): The store's root.
        expected_fingerprint (str, optional): Refuse rounds computed for
            another image list. Defaults to None (no check).
    """

    def __init__(self,
                 root: str,
                 expected_fingerprint: Optional[str] = None) -> None:
        self.root = osp.abspath(os.fspath(root))
        self.expected_fingerprint = expected_fingerprint
        self._reset()

    def _reset(self) -> None:
        self._current_path = osp.join(self.root, CURRENT_FILE)
        self._round: Optional[PriorRound] = None
        self._key: Optional[tuple] = None
        self._racy = False

    def __getstate__(self) -> dict:
        return dict(
            root=self.root, expected_fingerprint=self.expected_fingerprint)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(root={self.root!r}, '
                f'round={self.round})')

    @property
    def round(self) -> Optional[int]:
        """The round the last :meth:`get` served (None before any)."""
        return None if self._round is None else self._round.round

    def __len__(self) -> int:
        """Images in the committed round."""
        return len(self._refresh())

    def get(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        """Priors of image ``i`` in the committed round, as copies.

        Returns:
            tuple: ``boxes`` float32 ``[k, 4]`` ``(x1, y1, x2, y2)`` in
            original-image pixels and ``scores`` float32 ``[k]``.
        """
        return self._refresh().get(i)

    def _refresh(self) -> PriorRound:
        try:
            st = os.stat(self._current_path)
        except FileNotFoundError:
            st = None
        key = None if st is None else (st.st_dev, st.st_ino, st.st_size,
                                       st.st_mtime_ns, st.st_ctime_ns)
        if self._round is not None and key == self._key and not self._racy:
            return self._round
        now = time.time_ns()
        store = PriorStore(self.root)
        round_idx = store.current_round()
        if self._round is None or key != self._key \
                or round_idx != self._round.round:
            self._round = store.load(round_idx, self.expected_fingerprint)
        self._key = key
        self._racy = st is not None and now - st.st_mtime_ns < _RACY_NS
        return self._round
