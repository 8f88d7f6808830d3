# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Checkpoints for a model zoo: the weights only, named by their hash.

As mmdet's ``tools/model_converters/publish_model.py``: keep ``meta`` and
``state_dict`` (the optimizer, parameter schedulers, message hub and the
prior hook's state go), save, and add the first 8 hex digits of the file's
sha256 to its name (``<name>-<sha256[:8]>.pth``), the suffix OpenMMLab's
download tools check. Works for a JoinDet pretraining checkpoint and for
a converted one alike.
"""
import hashlib
import io
import os.path as osp
from typing import Dict, Sequence

import torch

from .atomic import write_bytes_atomic
from .convert import load_for_conversion

__all__ = ['publish_checkpoint', 'SAVE_KEYS']

SAVE_KEYS = ('meta', 'state_dict')


def publish_checkpoint(src: str,
                       dst: str,
                       save_keys: Sequence[str] = SAVE_KEYS) -> Dict:
    """Write the published copy of ``src`` as ``<dst stem>-<sha8>.pth``.

    Args:
        src (str): A runner checkpoint or a converted one (read with
            ``weights_only=True`` and the package's allow-list).
        dst (str): The output name, ``.pth`` optional; the hash is added
            before the extension. Its folder is created if needed.
        save_keys (Sequence[str]): The top-level keys kept.

    Returns:
        dict: ``path`` (the file written), ``sha256`` (of its bytes),
        ``kept`` and ``removed`` (top-level keys).

    Raises:
        ValueError: ``src`` holds no state dict, or ``dst`` is ``src``.
    """
    checkpoint, state_dict = load_for_conversion(src, dst)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        checkpoint = dict(state_dict=state_dict)  # a bare state dict
    kept = {k: v for k, v in checkpoint.items() if k in save_keys}
    buffer = io.BytesIO()
    torch.save(kept, buffer)
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    stem = dst[:-4] if dst.endswith('.pth') else dst
    path = f'{stem}-{sha256[:8]}.pth'
    if osp.exists(path) and osp.samefile(path, src):
        raise ValueError(f'{path} is the input checkpoint')
    write_bytes_atomic(path, data)
    return dict(
        path=path,
        sha256=sha256,
        kept=sorted(kept),
        removed=sorted(set(checkpoint) - set(kept)))
