# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Hand a JoinDet pretraining checkpoint over to a stock Deformable DETR.

Finetuning (paper Sec. 3.1) uses mmdet's own :class:`DeformableDETR` on
labeled data, started from the pretrained weights with ``load_from``.
:class:`~mmdet_joindet.models.detectors.JoinDet` shares every module name
with it, so the conversion renames nothing; it only drops what exists for
pretraining:

- ``bbox_head.emb_branch.*``: the embedding MLP ``f_emb`` of
  :class:`~mmdet_joindet.models.dense_heads.JoinDetHead` (Sec. 2.4),
  trained to regress the frozen SwAV features of the priors' crops.
  Deformable DETR has no such branch (it would be an unexpected key), and
  finetuning has no embedding target for it;
- ``emb_extractor.*`` (only in models whose backbone stem, ``layer1`` and
  ``layer2`` were not frozen): the frozen copy of those stages that computed
  the embedding targets. The detector's weights are under ``backbone.*``;
- ``bbox_head.cls_branches.*`` unless ``keep_cls``: the foreground vs
  background classifier is one logit per query (``[1, embed_dims]``), which
  cannot load into a ``num_classes``-way head. Left out, the keys are
  reported missing and keep the initialisation of
  :meth:`DeformableDETRHead.init_weights` (focal-loss prior bias), which the
  runner applies before ``load_from``.

Everything else (backbone, neck, ``level_embed``, encoder, decoder, query
embedding, reference points, ``reg_branches``, two-stage ``memory_trans_*``
and ``pos_trans_*`` layers) is copied as is. Only the model's weights are
written: optimizer, parameter schedulers, message hub and the pretraining
``meta`` (its ``dataset_meta`` names the single ``foreground`` class) do not
belong to a finetuning run.
"""
import os.path as osp
from collections import Counter, OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch
from torch import Tensor

from ..version import __version__
from .atomic import save_atomic
from .safe_load import allow_mmengine_checkpoints

EMB_BRANCH = 'bbox_head.emb_branch.'
EMB_EXTRACTOR = 'emb_extractor.'
CLS_BRANCHES = 'bbox_head.cls_branches.'


def convert_joindet_state_dict(
        state_dict: Mapping[str, Tensor],
        keep_cls: bool = False) -> Tuple[Dict[str, Tensor], List[str]]:
    """Drop JoinDet's pretraining-only weights from a model state dict.

    Args:
        state_dict (Mapping[str, Tensor]): ``JoinDet.state_dict()`` (as saved
            by mmengine's runner: no ``module.`` prefix).
        keep_cls (bool): Keep ``bbox_head.cls_branches.*`` (1-logit
            foreground classifiers), e.g. to finetune a one-class detector.
            Defaults to False.

    Returns:
        tuple[OrderedDict, list[str]]: The kept entries in their original
        order (the tensors themselves, not copies; ``_metadata`` preserved)
        and the dropped keys.

    Raises:
        ValueError: When ``state_dict`` has no ``bbox_head.emb_branch.*`` key,
            i.e. it is not a JoinDet model's.
    """
    if not any(k.startswith(EMB_BRANCH) for k in state_dict):
        heads = sorted({k.split('.')[0] for k in state_dict})
        raise ValueError(
            f'not a JoinDet state dict: expected `{EMB_BRANCH}*` keys (the '
            'embedding MLP of JoinDetHead), found none among '
            f'{len(state_dict)} keys (top-level modules: {heads}). A stock '
            'detector checkpoint needs no conversion: load it directly.')
    drop = (EMB_BRANCH, EMB_EXTRACTOR) + (() if keep_cls else (CLS_BRANCHES, ))
    kept: Dict[str, Tensor] = OrderedDict()
    dropped = []
    for key, value in state_dict.items():
        if key.startswith(drop):
            dropped.append(key)
        else:
            kept[key] = value
    kept._metadata = getattr(state_dict, '_metadata', OrderedDict())
    return kept, dropped


def convert_checkpoint(src: str, dst: str, keep_cls: bool = False) -> Dict:
    """Convert the JoinDet checkpoint ``src`` and write it to ``dst``.

    ``src`` is an mmengine runner checkpoint (a dict with ``state_dict``,
    ``meta``, ``optimizer``, ``message_hub``...) or a bare state dict; it is
    read with ``torch.load(weights_only=True)`` and the allow-list of
    :func:`allow_mmengine_checkpoints`. With EMA, the runner already put the
    averaged weights in ``state_dict``. ``dst`` receives
    ``dict(state_dict=..., meta=dict(converted_from=..., dropped=[...],
    mmdet_joindet_version=...))``, ready for ``load_from``.

    The file is written atomically: to a temporary file in ``dst``'s folder
    (created if needed), then renamed over ``dst``. If anything fails, the
    temporary file is removed and an existing ``dst`` is left untouched.

    Args:
        src (str): The JoinDet checkpoint.
        dst (str): Where to write the converted checkpoint; not ``src``.
        keep_cls (bool): See :func:`convert_joindet_state_dict`.

    Returns:
        dict: ``src``, ``dst``, ``kept`` (number of state-dict entries
        written), ``dropped`` (the dropped keys) and ``dropped_modules``
        (number of dropped keys per pretraining-only module prefix).

    Raises:
        ValueError: When ``dst`` is ``src`` or ``src`` is not a JoinDet
            checkpoint.
    """
    checkpoint, state_dict = load_for_conversion(src, dst)
    try:
        new_state_dict, dropped = convert_joindet_state_dict(
            state_dict, keep_cls=keep_cls)
    except ValueError as e:
        meta = checkpoint.get('meta') or {}
        if isinstance(meta, Mapping) and 'converted_from' in meta:
            raise ValueError(f'{src} was already converted (from '
                             f'{meta["converted_from"]})') from e
        raise ValueError(f'{src}: {e}') from e
    meta = dict(
        converted_from=osp.basename(src),
        dropped=dropped,
        mmdet_joindet_version=__version__)
    save_atomic(dict(state_dict=new_state_dict, meta=meta), dst)
    modules = Counter(
        next(p[:-1] for p in (EMB_BRANCH, EMB_EXTRACTOR, CLS_BRANCHES)
             if key.startswith(p)) for key in dropped)
    return dict(
        src=src,
        dst=dst,
        kept=len(new_state_dict),
        dropped=dropped,
        dropped_modules=dict(modules))


def load_for_conversion(src: str,
                        dst: str) -> Tuple[object, Mapping[str, Tensor]]:
    """Read the checkpoint ``src`` that a converter writes to ``dst``.

    Refuses ``dst`` naming ``src`` (the input is never overwritten), reads
    ``src`` with ``torch.load(weights_only=True)`` and the allow-list of
    :func:`allow_mmengine_checkpoints`.

    Returns:
        tuple: The loaded object and its model state dict (a runner
        checkpoint's ``state_dict``, or the object itself when it is a bare
        state dict).

    Raises:
        ValueError: When ``dst`` is ``src`` or ``src`` holds no state dict.
    """
    if _same_file(src, dst):
        raise ValueError(f'output {dst!r} is the input checkpoint: choose '
                         'another path (the input is never overwritten)')
    return load_checkpoint_safely(src)


def load_checkpoint_safely(src: str) -> Tuple[object, Mapping[str, Tensor]]:
    """``torch.load(src, weights_only=True)`` with the allow-list of
    :func:`allow_mmengine_checkpoints`: the loaded object and its model
    state dict (see :func:`load_for_conversion`)."""
    allow_mmengine_checkpoints()
    checkpoint = torch.load(src, map_location='cpu', weights_only=True)
    return checkpoint, _model_state_dict(checkpoint, src)


def _same_file(src: str, dst: str) -> bool:
    """Whether ``dst`` names ``src``: same path after resolving links, or
    a hard link to it."""
    if osp.realpath(src) == osp.realpath(dst):
        return True
    return osp.exists(src) and osp.exists(dst) and osp.samefile(src, dst)


def _model_state_dict(checkpoint, src: str) -> Mapping[str, Tensor]:
    """``checkpoint['state_dict']`` of a runner checkpoint, or ``checkpoint``
    itself when it is a bare state dict (every value a tensor)."""
    if isinstance(checkpoint, Mapping):
        state_dict = checkpoint.get('state_dict')
        if isinstance(state_dict, Mapping):
            return state_dict
        if checkpoint and all(
                isinstance(v, Tensor) for v in checkpoint.values()):
            return checkpoint
    raise ValueError(
        f'{src}: expected an mmengine checkpoint (a dict with a '
        '`state_dict`) or a state dict of tensors, got '
        f'{type(checkpoint).__name__} with keys '
        f'{list(checkpoint)[:8] if isinstance(checkpoint, Mapping) else []}')
