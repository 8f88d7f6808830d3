# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Your own images in three commands (and an optional fourth).

``pretrain`` (JoinDet on a folder or a COCO json of unlabeled images),
``finetune`` (a stock Deformable DETR from it on a small labeled COCO
json; with ``--split-percent``, the labeled part of a split drawn by the
kit's split tool), ``evaluate`` (COCO and class-agnostic metrics and a
PNG of predictions on held-out images); ``ssl`` trains the self-supervised
backbone on the same images first, for domains where no ImageNet backbone
fits. Every input is checked first (:mod:`.checks`); each command writes
its resolved config to its work dir and runs the package's tool on it,
resuming when it was interrupted.
"""
import json
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config

from mmdet_joindet.datasets.splits import draw_labeled_ids, split_coco_dict
from mmdet_joindet.utils.atomic import write_bytes_atomic
from mmdet_joindet.utils.convert import convert_checkpoint
from . import checks
from .report import test_metrics
from .resolve import ARCHS, resolve_finetune, resolve_pretrain, resolve_ssl
from .stages import Stage, run_tool

__all__ = ['add_own_data_commands', 'ssl', 'pretrain', 'finetune', 'evaluate']

PRETRAIN_CONFIG = 'joindet_pretrain.py'
FINETUNE_CONFIG = 'deformable_detr_finetune.py'


def write_config(cfg: Config, folder: str, name: str) -> str:
    """Write a resolved config (atomically); returns its path."""
    path = osp.join(folder, name)
    write_bytes_atomic(path, cfg.pretty_text.encode())
    return path


def _last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def _check_unlabeled(images: str, image_root: Optional[str], batch_size: int,
                     max_bad_share: float) -> int:
    kind, paths = checks.unlabeled_images(images)
    if kind == 'json' and image_root:
        with open(images) as f:
            names = [im['file_name'] for im in json.load(f)['images']]
        paths = [osp.join(image_root, n) for n in names]
    bad = checks.check_readable(paths, max_bad_share)
    if bad:
        print(f'{len(bad)} of {len(paths)} images cannot be read and will '
              'be skipped, e.g. ' + '; '.join(f'{p}: {r}' for p, r in bad[:3]))
    checks.check_enough_images(len(paths) - len(bad), batch_size, images)
    return len(paths) - len(bad)


def ssl(images: str,
        work_dir: str,
        image_root: Optional[str] = None,
        iters: int = 800,
        batch_size: int = 32,
        seed: int = 0,
        max_bad_share: float = checks.DEFAULT_MAX_BAD_SHARE) -> Dict:
    """Train the half-width ResNet-18 self-supervised; returns the stage's
    result (``backbone``: the exported weights)."""
    _check_unlabeled(images, image_root, batch_size, max_bad_share)
    cfg = resolve_ssl(images, image_root, iters, batch_size, seed)
    st = Stage('ssl', 'self-supervised backbone (DenseSwAV)', work_dir)

    def body(st):
        config = write_config(cfg, work_dir, 'dense_swav.py')
        st.train('train_ssl_backbone.py', config)
        return dict(backbone=osp.join(work_dir, 'backbone.pth'), config=config)

    return st.run(body)


def pretrain(images: str,
             work_dir: str,
             image_root: Optional[str] = None,
             arch: str = 'r18-half',
             backbone: Optional[str] = None,
             image_size: int = 128,
             prior_scale: float = 2,
             epochs: int = 6,
             update_interval: int = 2,
             batch_size: int = 8,
             seed: int = 0,
             device: str = 'cpu',
             max_bad_share: float = checks.DEFAULT_MAX_BAD_SHARE) -> Dict:
    """JoinDet pretraining; returns the stage's result (``checkpoint``,
    ``priors``, ``config``)."""
    checks.check_device(device)
    if arch == 'r18-half' and backbone is None:
        raise checks.JobInputError(
            '--arch r18-half has no public weights: give --backbone (the '
            "backbone.pth of 'joindet.py ssl' on these images), or 'none' "
            'for random weights (its priors then mean little), or use '
            "--arch r18 (ImageNet-supervised weights)")
    if backbone not in (None, 'none') and '://' not in backbone \
            and not osp.isfile(backbone):
        raise checks.JobInputError(f'--backbone {backbone} does not exist')
    _check_unlabeled(images, image_root, batch_size, max_bad_share)
    if update_interval > epochs:
        raise checks.JobInputError(
            f'--update-interval {update_interval} > --epochs {epochs}: no '
            'prior update would happen')
    cfg = resolve_pretrain(images, image_root, arch, backbone, image_size,
                           prior_scale, epochs, update_interval, batch_size,
                           seed)
    return run_pretrain_config(cfg, work_dir)


def run_pretrain_config(cfg: Config, work_dir: str) -> Dict:
    """The pretraining stage of a resolved config (the ``pretrain``
    command's, or a variant of it): written to ``work_dir`` and trained
    there, skipped when done, resumed when interrupted."""
    st = Stage('pretrain', 'JoinDet pretraining', work_dir)

    def body(st):
        config = write_config(cfg, work_dir, PRETRAIN_CONFIG)
        st.train('train.py', config)
        return dict(
            checkpoint=_last_checkpoint(work_dir),
            priors=osp.join(work_dir, 'priors'),
            config=config)

    return st.run(body)


def _pretraining(pretrained: str):
    """(config, checkpoint, kind) of a pretraining work dir or checkpoint."""
    if osp.isdir(pretrained):
        config = osp.join(pretrained, PRETRAIN_CONFIG)
        if not osp.isfile(config) or not osp.isfile(
                osp.join(pretrained, 'last_checkpoint')):
            raise checks.JobInputError(
                f'{pretrained} is not a finished pretraining work dir of '
                f"'joindet.py pretrain' (no {PRETRAIN_CONFIG} or checkpoint)")
        checkpoint = _last_checkpoint(pretrained)
    else:
        checkpoint = pretrained
        config = osp.join(osp.dirname(pretrained), PRETRAIN_CONFIG)
        if not osp.isfile(config):
            raise checks.JobInputError(
                f'no {PRETRAIN_CONFIG} beside {pretrained}: give the '
                "pretraining work dir of 'joindet.py pretrain'")
    return Config.fromfile(config), checkpoint, checks.checkpoint_kind(
        checkpoint)


def split_labeled(train_json: str,
                  out_dir: str,
                  percent: float,
                  seed: int = 1) -> str:
    """The labeled ``percent`` of ``train_json`` (the kit's nested draw,
    without replacement), written beside the rest; returns its path."""
    with open(train_json) as f:
        coco = json.load(f)
    ids = [im['id'] for im in coco['images']]
    labeled, unlabeled = split_coco_dict(
        coco, draw_labeled_ids(ids, percent / 100, seed, 'nested'))
    stem = osp.splitext(osp.basename(train_json))[0]
    out = osp.join(out_dir, f'{stem}.{seed}@{percent:g}.json')
    write_bytes_atomic(out, json.dumps(labeled).encode())
    write_bytes_atomic(
        osp.join(out_dir, f'{stem}.{seed}@{percent:g}-unlabeled.json'),
        json.dumps(unlabeled).encode())
    return out


def finetune(pretrained: Optional[str],
             train_json: str,
             val_json: str,
             work_dir: str,
             images: Optional[str] = None,
             val_images: Optional[str] = None,
             split_percent: Optional[float] = None,
             epochs: int = 100,
             batch_size: int = 8,
             seed: int = 0,
             device: str = 'cpu',
             backbone: Optional[str] = None,
             pretrain_config: Optional[str] = None,
             evals: int = 10) -> Dict:
    """A stock Deformable DETR from a JoinDet pretraining (or, with
    ``pretrained=None``, from ``backbone`` alone), validated ``evals``
    times; returns the stage's result (``checkpoint``, ``config``)."""
    checks.check_device(device)
    train = checks.check_labeled_json(train_json, images)
    val = checks.check_labeled_json(val_json, val_images or images)
    checks.check_same_categories(train, val, train_json, val_json)
    if pretrained is not None:
        pre_cfg, checkpoint, kind = _pretraining(pretrained)
    else:
        pre_cfg, checkpoint, kind = Config.fromfile(pretrain_config), None, ''
    n = len(train['images'])
    if split_percent is not None:
        if not 0 < split_percent <= 100:
            raise checks.JobInputError(
                f'--split-percent must be in (0, 100], got {split_percent}')
        n = round(n * split_percent / 100)
    checks.check_enough_images(
        n, batch_size, f'the labeled images of {train_json}' +
        (f' ({split_percent:g}%)' if split_percent is not None else ''))
    st = Stage('finetune', 'finetuning', work_dir)

    def body(st):
        labeled = train_json
        if split_percent is not None:
            labeled = split_labeled(train_json, work_dir, split_percent)
        load_from = checkpoint
        if kind == 'joindet':
            load_from = osp.join(work_dir, 'joindet_converted.pth')
            convert_checkpoint(checkpoint, load_from)
        cfg = resolve_finetune(pre_cfg, labeled, val_json, images, val_images
                               or images, load_from, backbone, epochs,
                               batch_size, seed, evals)
        config = write_config(cfg, work_dir, FINETUNE_CONFIG)
        st.train('train.py', config)
        return dict(
            checkpoint=_last_checkpoint(work_dir),
            config=config,
            labeled=labeled)

    return st.run(body)


def evaluate(finetuned: str,
             work_dir: str,
             checkpoint: Optional[str] = None,
             val_json: Optional[str] = None,
             val_images: Optional[str] = None,
             num_vis: int = 4) -> Dict:
    """Test a finetune (its own val set, or ``val_json``): COCO and
    class-agnostic metrics and a PNG of the first ``num_vis`` images'
    predictions (none with 0)."""
    config = osp.join(finetuned, FINETUNE_CONFIG)
    if not osp.isfile(config):
        raise checks.JobInputError(
            f"{finetuned} is not a work dir of 'joindet.py finetune' (no "
            f'{FINETUNE_CONFIG})')
    checkpoint = checkpoint or _last_checkpoint(finetuned)
    cfg = Config.fromfile(config)
    if val_json is not None:
        val = checks.check_labeled_json(val_json, val_images)
        classes = tuple(
            c['name']
            for c in sorted(val['categories'], key=lambda c: c['id']))
        if classes != tuple(cfg.test_dataloader.dataset.metainfo.classes):
            raise checks.JobInputError(
                f'the categories of {val_json} differ from the ones the '
                f'detector was finetuned on: {classes} vs '
                f'{tuple(cfg.test_dataloader.dataset.metainfo.classes)}')
        cfg.test_dataloader.dataset.update(
            ann_file=osp.abspath(val_json),
            data_prefix=dict(
                img=osp.abspath(val_images or osp.dirname(val_json)) + '/'))
        for evaluator in cfg.test_evaluator:
            evaluator.ann_file = osp.abspath(val_json)
    st = Stage('evaluate', 'evaluation', work_dir)

    def body(st):
        test_config = write_config(cfg, work_dir, 'test.py')
        run_tool(
            'test.py', [test_config, checkpoint, '--work-dir', work_dir],
            log=osp.join(work_dir, 'job.log'))
        out = dict(metrics=test_metrics(work_dir), config=test_config)
        if num_vis > 0:  # the figure tool's function, in this process
            from mmdet_joindet import visualization as vis
            out['predictions'] = vis.save_png(
                osp.join(work_dir, 'predictions.png'),
                vis.prediction_figure(cfg, checkpoint, list(range(num_vis))))
            print(f'wrote {out["predictions"]}')
        return out

    return st.run(body)


def add_own_data_commands(sub) -> None:
    """The ``ssl``, ``pretrain``, ``finetune`` and ``evaluate`` commands of
    ``tools/joindet.py``: each option's name is its function's argument
    (:func:`run_command` passes them by name)."""
    p = sub.add_parser('ssl', help='train the backbone self-supervised')
    p.add_argument('--images', required=True, help='folder or COCO json')
    p.add_argument('--image-root', help='for a json: file_name relative to')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--iters', type=int, default=800)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument(
        '--max-bad-share', type=float, default=checks.DEFAULT_MAX_BAD_SHARE)
    p.set_defaults(func=ssl)

    p = sub.add_parser('pretrain', help='JoinDet on unlabeled images')
    p.add_argument('--images', required=True, help='folder or COCO json')
    p.add_argument('--image-root', help='for a json: file_name relative to')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--arch', choices=tuple(ARCHS), default='r18-half')
    p.add_argument(
        '--backbone',
        help="backbone weights: a file (the ssl command's backbone.pth), "
        "a URL, or 'none' (default: the arch's)")
    p.add_argument('--image-size', type=int, default=128)
    p.add_argument(
        '--prior-scale',
        type=float,
        default=2,
        help='the prior passes read the images at this many times '
        '--image-size (default 2: finer cells of the eigen map)')
    p.add_argument('--epochs', type=int, default=6)
    p.add_argument('--update-interval', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cpu')
    p.add_argument(
        '--max-bad-share', type=float, default=checks.DEFAULT_MAX_BAD_SHARE)
    p.set_defaults(func=pretrain)

    p = sub.add_parser('finetune', help='a Deformable DETR from it')
    p.add_argument(
        '--pretrained',
        required=True,
        help="the pretrain command's work dir (or a checkpoint)")
    p.add_argument('--train-json', required=True, help='labeled COCO json')
    p.add_argument('--val-json', required=True, help='held-out COCO json')
    p.add_argument('--images', help='image folder (default: json folders)')
    p.add_argument('--val-images', help='default: --images')
    p.add_argument(
        '--split-percent',
        type=float,
        help='finetune on this share of --train-json only')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--epochs', type=int, default=100)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cpu')
    p.set_defaults(func=finetune)

    p = sub.add_parser('evaluate', help='metrics and a PNG of predictions')
    p.add_argument(
        '--finetuned', required=True, help="the finetune command's work dir")
    p.add_argument('--checkpoint', help='default: its last checkpoint')
    p.add_argument('--val-json', help="default: the finetune's val set")
    p.add_argument('--val-images')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--num-vis', type=int, default=4)
    p.set_defaults(func=evaluate)


def run_command(args) -> None:
    """Call the command's function with the parsed options; print what it
    returns."""
    kwargs = {
        k: v
        for k, v in vars(args).items() if k not in ('command', 'func', 'nproc')
    }
    _print(args.func(**kwargs))


def _print(result: Dict) -> None:
    for key, value in result.items():
        if key == 'metrics':
            for k, v in value.items():
                print(f'  {k}: {v}')
        else:
            print(f'{key}: {value}')
