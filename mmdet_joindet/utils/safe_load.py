# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Load mmengine runner checkpoints under ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True`` and
mmengine 0.10.7 passes nothing, so every runner checkpoint (``resume``,
``load_from``, ``mim test --checkpoint``) fails with ``Unsupported global
... HistoryBuffer``. Rather than turning ``weights_only`` off for the
process, importing :mod:`mmdet_joindet` allow-lists exactly the globals that
mmengine's Runner and numpy put into a checkpoint:

- ``numpy.ndarray``, ``numpy.dtype``, the ``numpy.dtypes.*DType`` classes,
  ``numpy._core.multiarray.scalar`` and ``numpy._core.multiarray._reconstruct``
  (also under numpy 1.x's ``numpy.core`` names, for older files);
- ``mmengine.logging.history_buffer.HistoryBuffer`` (the message hub's
  log history);
- ``builtins.getattr``, **restricted**: HistoryBuffer's class-level table of
  statistics methods ``min``/``max``/``mean``/``current`` is pickled as
  ``getattr(HistoryBuffer, name)``. The real ``getattr`` would reopen
  arbitrary code execution (attribute chains reach ``__globals__``), so the
  allow-listed callable only resolves those four names on the HistoryBuffer
  class and refuses everything else.

Everything else (``os.system`` in a ``__reduce__``, any other class) is
still refused by torch's weights-only unpickler, which names the offending
global in its error.
"""
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch

HISTORY_BUFFER_METHODS = frozenset({'min', 'max', 'mean', 'current'})

_installed = False


def restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to HistoryBuffer's pickled statistics methods."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    what = obj.__qualname__ if isinstance(obj, type) else type(obj).__name__
    raise pickle.UnpicklingError(
        f'mmdet_joindet refused getattr({what}, {name!r}) while loading a '
        'checkpoint with weights_only=True: only getattr(HistoryBuffer, m) '
        f'for m in {sorted(HISTORY_BUFFER_METHODS)} is allowed. If you '
        'trust the file, load it yourself with weights_only=False.')


def checkpoint_safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The globals an mmengine runner checkpoint needs, and nothing else."""
    from mmengine.logging import HistoryBuffer
    from numpy._core import multiarray
    safe: List[Union[Callable, Tuple[Callable, str]]] = [
        np.ndarray,
        np.dtype,
        HistoryBuffer,
        (restricted_getattr, 'builtins.getattr'),
    ]
    for core in ('numpy._core', 'numpy.core'):
        safe += [(multiarray.scalar, f'{core}.multiarray.scalar'),
                 (multiarray._reconstruct, f'{core}.multiarray._reconstruct')]
    safe += [
        cls for cls in vars(np.dtypes).values()
        if isinstance(cls, type) and issubclass(cls, np.dtype)
    ]
    return safe


def allow_mmengine_checkpoints() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for ``torch.load``.

    Idempotent; called when :mod:`mmdet_joindet` is imported.
    """
    global _installed
    if not _installed:
        torch.serialization.add_safe_globals(checkpoint_safe_globals())
        _installed = True
