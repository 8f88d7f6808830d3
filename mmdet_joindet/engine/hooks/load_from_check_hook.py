# Copyright (c) mmdet_joindet contributors. All rights reserved.
import re
from typing import Sequence

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet_joindet.utils.convert import EMB_BRANCH, load_checkpoint_safely


@HOOKS.register_module()
class LoadFromCheckHook(Hook):
    """Refuse a ``load_from`` checkpoint that does not fit the model.

    mmengine loads ``load_from`` non-strictly: a tensor whose shape differs
    from the model's is skipped with a warning, and training goes on from
    a silently partial load. Before the weights are loaded (``before_run``
    runs before ``load_or_resume``) this hook compares the checkpoint with
    the model and raises, naming the problem and the fix, when

    - it is a JoinDet pretraining checkpoint, not converted (it holds the
      embedding branch ``bbox_head.emb_branch.*``);
    - a tensor's shape differs from the model's (a pretraining of another
      model size, number of queries, levels or variant);
    - the model misses keys beyond ``allowed_missing`` (regular
      expressions; by default the classifier a converted checkpoint leaves
      out), or the checkpoint holds keys the model lacks.

    Resumed runs are not checked (their checkpoint is the run's own).

    Args:
        allowed_missing (Sequence[str]): Patterns of model keys the
            checkpoint may lack. Defaults to the classification branches.
    """

    priority = 'VERY_HIGH'

    def __init__(
        self,
        allowed_missing: Sequence[str] = (r'bbox_head\.cls_branches\.', )
    ) -> None:
        self.allowed_missing = [re.compile(p) for p in allowed_missing]

    def before_run(self, runner) -> None:
        path = runner.cfg.get('load_from')
        if not path or runner.cfg.get('resume', False):
            return
        _, state = load_checkpoint_safely(path)
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        own = model.state_dict()
        ckpt = {
            k[7:] if k.startswith('module.') else k: v
            for k, v in state.items()
        }
        if any(k.startswith(EMB_BRANCH) for k in ckpt):
            raise ValueError(
                f'load_from={path} is a JoinDet pretraining checkpoint: '
                'convert it first (python tools/model_converters/'
                'joindet_to_deformable_detr.py IN.pth OUT.pth) and give '
                'OUT.pth')
        wrong = [
            f'{k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}'
            for k, v in ckpt.items() if k in own
            and isinstance(v, torch.Tensor) and v.shape != own[k].shape
        ]
        missing = [
            k for k in own if k not in ckpt and not any(
                p.match(k) for p in self.allowed_missing)
        ]
        unexpected = [k for k in ckpt if k not in own]
        problems = []
        if wrong:
            problems.append(f'{len(wrong)} tensors differ in shape, e.g. ' +
                            '; '.join(wrong[:3]))
        if missing:
            problems.append(f'the model has {len(missing)} keys the '
                            f'checkpoint lacks, e.g. {missing[:3]}')
        if unexpected:
            problems.append(f'the checkpoint has {len(unexpected)} keys the '
                            f'model lacks, e.g. {unexpected[:3]}')
        if problems:
            raise ValueError(
                f'load_from={path} does not fit this model: ' +
                ' and '.join(problems) + '. Pretrain with the same model '
                '(backbone, widths, layers, queries, levels, with_box_refine/'
                'as_two_stage) as the finetune config, or finetune with the '
                "pretraining's model settings")
        runner.logger.info(f'load_from={path}: every tensor fits the model '
                           f'({len(ckpt)} loaded, {len(own) - len(ckpt)} '
                           'left to their initialisation)')
