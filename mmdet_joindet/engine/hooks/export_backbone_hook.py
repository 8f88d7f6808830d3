# Copyright (c) mmdet_joindet contributors. All rights reserved.
import os.path as osp
import time

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from mmdet_joindet.utils.atomic import save_atomic
from mmdet_joindet.version import __version__


def _unwrapped(runner) -> nn.Module:
    model = runner.model
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class ExportBackboneHook(Hook):
    """Write the trained model's backbone, ready for ``Pretrained``.

    At the end of training the main process writes
    ``<work_dir>/<filename>``: ``dict(state_dict=<model.backbone's weights,
    mmdet names>, meta=dict(config, backbone, ssl_method, iter,
    mmdet_joindet_version, time))``, so that a detector config names it as
    ``backbone.init_cfg=dict(type='Pretrained', checkpoint=...)``. The
    self-supervised configs (``configs/ssl/``) carry this hook, so ``mim
    train`` and ``tools/train.py`` export as
    ``tools/train_ssl_backbone.py`` does. The file is written under a
    temporary name and renamed: a reader never sees half of it, and an
    earlier export stays whole until the new one is complete.

    Args:
        filename (str): Name of the file in the work dir. Defaults to
            ``'backbone.pth'``.
    """

    priority = 'LOW'

    def __init__(self, filename: str = 'backbone.pth') -> None:
        if not filename or osp.basename(filename) != filename:
            raise ValueError('ExportBackboneHook: filename must be a file '
                             f'name without folders, got {filename!r}')
        self.filename = filename

    def before_train(self, runner) -> None:
        """Refuse a model without a backbone before any training."""
        if not isinstance(
                getattr(_unwrapped(runner), 'backbone', None), nn.Module):
            raise TypeError(
                'ExportBackboneHook needs a model with a `backbone` module '
                f'(got {type(_unwrapped(runner)).__name__}); remove the '
                'hook from custom_hooks for this model')

    def after_train(self, runner) -> None:
        if is_main_process():
            path = self.export(runner)
            runner.logger.info(f'backbone weights written to {path}')

    def export(self, runner) -> str:
        """Write the backbone now; returns the file's path."""
        model = _unwrapped(runner)
        state_dict = {
            k: v.detach().cpu().clone()
            for k, v in model.backbone.state_dict().items()
        }
        cfg = runner.cfg
        meta = dict(
            config=getattr(cfg, 'filename', None),
            backbone=cfg.model.backbone.to_dict() if 'model' in cfg else None,
            ssl_method=type(model).__name__,
            iter=runner.iter,
            mmdet_joindet_version=__version__,
            time=time.strftime('%Y-%m-%d %H:%M:%S'))
        path = osp.join(runner.work_dir, self.filename)
        save_atomic(dict(state_dict=state_dict, meta=meta), path)
        return path
