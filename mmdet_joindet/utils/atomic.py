# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Files that a reader never sees half written."""
import contextlib
import os
import os.path as osp
import tempfile
from typing import IO, Callable, Optional

import torch


def fsync_dir(path: str) -> None:
    """Persist a directory's entries (creations and renames in it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_file(path: str) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_file(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Create ``path`` (it must not exist), let ``write(f)`` fill the
    binary file object, then flush and fsync it."""
    with open(path, 'xb') as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def write_atomic(dst: str,
                 write: Callable[[str], None],
                 tmp: Optional[str] = None) -> None:
    """Have ``write(tmp)`` fill a temporary file beside ``dst``, fsync it,
    rename it to ``dst`` and fsync the directory.

    A failure leaves ``dst`` as it was (an earlier file whole) and no
    temporary file behind; after a crash ``dst`` holds the old or the new
    content, never a mix. The file gets the mode ``open`` would give it.

    Args:
        dst (str): The file to write.
        write (callable): Fills the file at the path it is given.
        tmp (str, optional): The temporary path, in ``dst``'s folder
            (default: a fresh hidden ``.<name>.*.tmp``).
    """
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    if tmp is None:
        fd, tmp = tempfile.mkstemp(
            prefix=f'.{osp.basename(dst)}.', suffix='.tmp', dir=folder)
        os.close(fd)
    try:
        write(tmp)
        fsync_file(tmp)
        # mkstemp creates the file 0600; give it the mode `open` would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    fsync_dir(folder)


def save_atomic(obj, dst: str) -> None:
    """``torch.save(obj, dst)`` through :func:`write_atomic`."""
    write_atomic(dst, lambda tmp: torch.save(obj, tmp))


def write_bytes_atomic(dst: str,
                       data: bytes,
                       tmp: Optional[str] = None) -> None:
    """Write ``data`` to ``dst`` through :func:`write_atomic` (``tmp``:
    its temporary path)."""

    def write(path: str) -> None:
        with open(path, 'wb') as f:
            f.write(data)

    write_atomic(dst, write, tmp)
