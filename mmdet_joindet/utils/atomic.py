# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Files that a reader never sees half written."""
import contextlib
import os
import os.path as osp
import tempfile

import torch


def save_atomic(obj, dst: str) -> None:
    """``torch.save(obj, dst)`` through a temporary file and a rename.

    A failure leaves ``dst`` as it was (an earlier file whole) and no
    temporary file behind.
    """
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(dst)}.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        # mkstemp creates the file 0600; give it the mode `open` would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
