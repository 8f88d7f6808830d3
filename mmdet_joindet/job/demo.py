# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The main job on the embedded default data: the whole method, then a
report.

The same commands a user runs on their own images (:mod:`.own_data`), on
the proxy scenes, each in its own work dir under ``work_dir``:

1. ``data``: the proxy scenes (:func:`build_proxy_dataset`);
2. ``ssl``: the self-supervised backbone (DenseSwAV), the role SwAV plays
   in the paper;
3. ``pretrain``: JoinDet on the unlabeled images from that backbone
   (frozen): R0, then a Box Smooth round every ``update_interval`` epochs;
4. ``finetune`` and ``evaluate``: the converted model, a stock mmdet
   Deformable DETR, on the 10% labels, tested on val;
5. ``baseline`` and ``evaluate_baseline``: the same finetune without
   detector pretraining, from the stage-2 backbone alone;
6. ``report``: ``report.md``, ``report.json`` and PNGs.

A second run skips the finished stages and resumes an interrupted one.
"""
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Dict, Optional

from mmengine.config import Config

from mmdet_joindet.datasets.proxy import build_proxy_dataset
from mmdet_joindet.evaluation import score_prior_rounds
from mmdet_joindet.utils.atomic import write_bytes_atomic
from mmdet_joindet.visualization import prior_figure, save_png
from . import own_data
from .checks import JobInputError, check_device, check_enough_images
from .report import plot_ap_by_epoch, plot_losses, read_scalars, write_report
from .stages import Stage

__all__ = ['DemoSettings', 'run_demo']


@dataclass
class DemoSettings:
    """The job's sizes; the defaults are what ``docs/main_job.md``
    measured and chose. Smaller values serve tests and quick looks."""
    num_unlabeled: int = 2000
    num_train: int = 2000
    num_val: int = 200
    image_size: int = 128
    prior_scale: float = 2
    blend: str = 'hard'
    backgrounds: str = 'textures'
    ssl_iters: int = 800
    ssl_batch_size: int = 32
    pretrain_epochs: int = 6
    update_interval: int = 2
    finetune_epochs: int = 50
    batch_size: int = 8
    seed: int = 0
    baseline: bool = True
    device: str = 'cpu'


STEPS = ('data', 'ssl', 'pretrain', 'finetune', 'evaluate', 'baseline',
         'evaluate_baseline', 'report')


def run_demo(work_dir: str = 'work_dirs/main_job',
             data_root: str = 'data/proxy',
             settings: Optional[DemoSettings] = None) -> str:
    """Run (or finish) the main job; returns the path of ``report.md``."""
    s = settings or DemoSettings()
    check_device(s.device)
    check_enough_images(
        round(s.num_train * 0.1), s.batch_size,
        f'the 10% labeled split of {s.num_train} training images')
    _check_same_settings(work_dir, s)
    steps = [k for k in STEPS if s.baseline or 'baseline' not in k]
    wd = {k: osp.join(work_dir, k) for k in steps}
    results: Dict[str, Dict] = {}
    unlabeled = dict(
        images=osp.join(data_root, 'unlabeled', 'unlabeled.json'),
        image_root=osp.join(data_root, 'unlabeled', 'images'))
    labeled = dict(
        train_json=osp.join(data_root, 'train', 'train_10pct.json'),
        val_json=osp.join(data_root, 'val', 'val.json'),
        images=osp.join(data_root, 'train', 'images'),
        val_images=osp.join(data_root, 'val', 'images'),
        epochs=s.finetune_epochs,
        batch_size=s.batch_size,
        seed=s.seed,
        device=s.device)
    for name in steps:
        print(
            f'\n=== step {steps.index(name) + 1}/{len(steps)}: {name}',
            flush=True)
        if name == 'data':
            done = Stage(name, 'proxy data', wd[name]).run(lambda st: dict(
                counts=build_proxy_dataset(
                    data_root,
                    size=s.image_size,
                    num_unlabeled=s.num_unlabeled,
                    num_train=s.num_train,
                    num_val=s.num_val,
                    blend=s.blend,
                    backgrounds=None
                    if s.backgrounds == 'all' else s.backgrounds,
                    seed=s.seed,
                    progress=True)['manifest']['counts']))
        elif name == 'ssl':
            done = own_data.ssl(
                work_dir=wd[name],
                iters=s.ssl_iters,
                batch_size=s.ssl_batch_size,
                seed=s.seed,
                **unlabeled)
        elif name == 'pretrain':
            done = own_data.pretrain(
                work_dir=wd[name],
                backbone=results['ssl']['backbone'],
                image_size=s.image_size,
                prior_scale=s.prior_scale,
                epochs=s.pretrain_epochs,
                update_interval=s.update_interval,
                batch_size=s.batch_size,
                seed=s.seed,
                device=s.device,
                **unlabeled)
        elif name == 'finetune':
            done = own_data.finetune(
                wd['pretrain'], work_dir=wd[name], **labeled)
        elif name == 'baseline':
            done = own_data.finetune(
                None,
                work_dir=wd[name],
                backbone=results['ssl']['backbone'],
                pretrain_config=results['pretrain']['config'],
                **labeled)
        elif name.startswith('evaluate'):
            of = 'baseline' if name.endswith('baseline') else 'finetune'
            done = own_data.evaluate(wd[of], wd[name])
        else:
            done = Stage(
                name, 'report',
                wd[name]).run(lambda st: _report(st, results, data_root, s))
        results[name] = dict(done, work_dir=wd[name])
    return results['report']['report']


def _check_same_settings(work_dir: str, s: DemoSettings) -> None:
    """A job folder holds one job: refuse to mix stages of other settings
    (their outputs would be reused as if they were this job's)."""
    path = osp.join(work_dir, 'settings.json')
    mine = asdict(s)
    if osp.isfile(path):
        with open(path) as f:
            theirs = json.load(f)
        if theirs != mine:
            diff = {
                k: (theirs.get(k), v)
                for k, v in mine.items() if theirs.get(k) != v
            }
            raise JobInputError(
                f'{work_dir} holds a job run with other settings (was, now: '
                f'{diff}): give another --work-dir, or remove {work_dir} to '
                'start over')
    else:
        os.makedirs(work_dir, exist_ok=True)
        write_bytes_atomic(path, json.dumps(mine, indent=1).encode())


def _report(st: Stage, results: Dict, data_root: str, s: DemoSettings) -> Dict:
    """Numbers, figures and ``report.md`` from the stages' outputs."""
    folder = st.work_dir
    arms = {'finetune': 'from JoinDet pretraining'}
    if s.baseline:
        arms['baseline'] = 'without detector pretraining (backbone only)'
    scalars = {
        'JoinDet pretraining': read_scalars(results['pretrain']['work_dir'])
    }
    for arm, name in arms.items():
        scalars[f'finetune {name}'] = read_scalars(results[arm]['work_dir'])
    figures = {}
    gt = osp.join(data_root, 'unlabeled', 'unlabeled_gt.json')
    priors = score_prior_rounds(results['pretrain']['priors'], gt)
    fig6 = prior_figure(
        Config.fromfile(results['pretrain']['config']),
        results['pretrain']['priors'],
        indices=list(range(4)),
        checkpoint=results['pretrain']['checkpoint'],
        ann_file=gt)
    save_png(osp.join(folder, 'figure6_priors.png'), fig6)
    figures['Figure 6: four pretraining images, their eigen attention map '
            'at the end of pretraining, the priors of every round (orange) '
            'and the withheld boxes (green)'] = 'figure6_priors.png'
    plot_losses(scalars, osp.join(folder, 'loss_curves.png'))
    figures['Training losses'] = 'loss_curves.png'
    plot_ap_by_epoch(
        {
            k: v
            for k, v in scalars.items() if k.startswith('finetune')
        }, osp.join(folder, 'ap_by_epoch.png'))
    figures['Validation AP and AP50 by epoch of the finetunes'] = \
        'ap_by_epoch.png'
    evaluations = dict(finetune='evaluate', baseline='evaluate_baseline')
    summary = dict(
        data=(f'Data: the proxy scenes under `{data_root}` '
              f'({s.num_unlabeled} unlabeled images for the backbone and '
              f'JoinDet, {round(s.num_train * 0.1)} labeled images (10% of '
              f'{s.num_train}) for finetuning, {s.num_val} val images), '
              f'{s.image_size} px. Settings: {asdict(s)}.'),
        seed=s.seed,
        results={
            f'Deformable DETR {name}': results[evaluations[arm]]['metrics']
            for arm, name in arms.items()
        },
        priors=priors,
        stages={
            k:
            dict(
                title=k,
                seconds=v['seconds'],
                skipped=v['skipped'],
                config=v.get('config'))
            for k, v in results.items()
        },
        notes=[
            "Every number comes from the stages' own outputs: the test "
            "runs' metric files, the prior store, mmengine's scalars. The "
            'finetunes are tested at their last epoch (val is the only '
            'held-out set, so no epoch is picked on it).'
        ])
    return dict(report=write_report(folder, summary, figures))
