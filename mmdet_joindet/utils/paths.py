# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Where the package's configs and tools are: a checkout's, else the
installed package's copies under ``mmdet_joindet/.mim/`` (as ``mim``
finds them)."""
import os.path as osp

__all__ = ['repo_file']

_PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))


def repo_file(rel: str) -> str:
    """The absolute path of ``configs/...`` or ``tools/...`` file ``rel``.

    Raises:
        FileNotFoundError: Neither a checkout nor the installed package
            has it (reinstall the package: ``pip install .``).
    """
    for root in (osp.dirname(_PACKAGE), osp.join(_PACKAGE, '.mim')):
        path = osp.join(root, rel)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'{rel} is in neither a checkout of mmdet_joindet nor the installed '
        "package's .mim/ folder: reinstall mmdet_joindet (pip install .)")
