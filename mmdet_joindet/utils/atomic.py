# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Files that a reader never sees half written."""
import contextlib
import os
import os.path as osp
import tempfile
from typing import Callable

import torch


def write_atomic(dst: str, write: Callable[[str], None]) -> None:
    """Have ``write(tmp)`` fill a temporary file beside ``dst``, then
    rename it to ``dst``.

    A failure leaves ``dst`` as it was (an earlier file whole) and no
    temporary file behind. The file gets the mode ``open`` would give it.
    """
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(dst)}.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates the file 0600; give it the mode `open` would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def save_atomic(obj, dst: str) -> None:
    """``torch.save(obj, dst)`` through :func:`write_atomic`."""
    write_atomic(dst, lambda tmp: torch.save(obj, tmp))


def write_bytes_atomic(dst: str, data: bytes) -> None:
    """Write ``data`` to ``dst`` through :func:`write_atomic`."""

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            f.write(data)

    write_atomic(dst, write)
