# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""A backbone file from any runner checkpoint, as ExportBackboneHook writes.

:class:`~mmdet_joindet.engine.hooks.ExportBackboneHook` writes
``backbone.pth`` when training ends. A run stopped before its end (a time
limit, a crash) or an earlier ``iter_N.pth`` of a finished one has no such
file; :func:`export_backbone_checkpoint` makes it from the runner
checkpoint: the ``backbone.*`` weights, renamed to mmdet ``ResNet`` names,
so that a detector config names the file as
``backbone.init_cfg=dict(type='Pretrained', checkpoint=...)``.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Mapping

from torch import Tensor

from ..version import __version__
from .atomic import save_atomic
from .convert import load_for_conversion

BACKBONE = 'backbone.'


def backbone_state_dict(state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """The ``backbone.*`` entries of a model state dict, prefix removed.

    Raises:
        ValueError: When there is no ``backbone.*`` key.
    """
    out = OrderedDict((k[len(BACKBONE):], v) for k, v in state_dict.items()
                      if k.startswith(BACKBONE))
    if not out:
        heads = sorted({k.split('.')[0] for k in state_dict})
        raise ValueError(
            f'no `{BACKBONE}*` weights among {len(state_dict)} keys '
            f'(top-level modules: {heads}); a backbone file written by '
            'ExportBackboneHook is already exported')
    return out


def export_backbone_checkpoint(src: str, dst: str) -> Dict:
    """Write the backbone of the runner checkpoint ``src`` to ``dst``.

    ``src`` is read safely (:func:`~.convert.load_for_conversion`); ``dst``
    receives
    ``dict(state_dict=<backbone weights, mmdet names>,
    meta=dict(exported_from, iter, mmdet_joindet_version))``, written to a
    temporary file and renamed (an existing ``dst`` stays whole on failure).

    Args:
        src (str): An mmengine runner checkpoint (or a bare state dict).
        dst (str): Output path; not ``src``.

    Returns:
        dict: ``src``, ``dst``, ``keys`` (entries written) and ``iter`` (the
        checkpoint's iteration, or None when it has no ``meta``).

    Raises:
        ValueError: When ``dst`` is ``src`` or ``src`` holds no backbone.
    """
    checkpoint, model_state = load_for_conversion(src, dst)
    try:
        state_dict = backbone_state_dict(model_state)
    except ValueError as e:
        raise ValueError(f'{src}: {e}') from e
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    it = meta.get('iter') if isinstance(meta, Mapping) else None
    save_atomic(
        dict(
            state_dict=state_dict,
            meta=dict(
                exported_from=osp.basename(src),
                iter=it,
                mmdet_joindet_version=__version__)), dst)
    return dict(src=src, dst=dst, keys=len(state_dict), iter=it)
