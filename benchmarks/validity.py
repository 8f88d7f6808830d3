# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Does JoinDet help? Every pretraining arm, finetuned on 1% and 10% of
the labels with several seeds, against no detector pretraining.

    PYTHONPATH=. python benchmarks/validity.py [--work-dir W] \\
        [--data-root data/proxy_validity] [--arms ...] [--splits 1 10] \\
        [--seeds 0 1 2] [--device cpu] [--nproc 1] [--quick]

Stage 0 makes the data (the proxy scenes by default; ``--data-root`` of an
existing proxy-layout folder reuses it) and one self-supervised backbone
shared by every arm (the role SwAV plays in the paper). Each pretraining
arm then runs with the same model, budget and loop: JoinDet and its
variants (direct replacement instead of Box Smooth, R0 fixed, R0 from
selective search, three cuts per image), DETReg's selective search and
UP-DETR-style random crops (recomputed online, through the same detector
and objective), and is converted and finetuned on each split with each
seed; the "none" arms finetune from the stage-0 backbone or from random
weights. Every run is a stage of ``mmdet_joindet.job`` (its own work dir,
resolved config, ``DONE.json``): rerunning the command skips what is done
and resumes what was interrupted. After every finished run,
``results.json``, ``table.md`` and the plots are rewritten, so partial
results are readable (and committable) while the benchmark runs.

Priors are scored at every round against the pretraining images' withheld
boxes (``unlabeled_gt.json``) with the kit's scoring (pycocotools
``useCats=0``); the online baselines' priors are scored on one draw.
"""
import argparse
import json
import os.path as osp
import sys
import time
from typing import Dict, List

import numpy as np

from mmdet_joindet.datasets.proxy import build_proxy_dataset
from mmdet_joindet.evaluation import box_recall, score_prior_rounds
from mmdet_joindet.job import own_data
from mmdet_joindet.job.checks import check_device
from mmdet_joindet.job.resolve import resolve_pretrain
from mmdet_joindet.job.stages import Stage, set_processes
from mmdet_joindet.utils.atomic import write_bytes_atomic
from mmdet_joindet.utils.config_edit import find_pipeline

# Priors one image may hold, the same in every arm that reads priors:
# DETReg's top-30 selective-search boxes, JoinDet's store and loader (the
# job's own configs, sized for its demo, cap JoinDet at 10).
PRIORS_PER_IMAGE = 30
SS = dict(type='SelectiveSearchPriorGenerator', max_priors=PRIORS_PER_IMAGE)
CROPS = dict(type='RandomCropPriorGenerator', num_crops=10)
# arm -> how its pretraining differs from JoinDet's (None: no pretraining)
ARMS = {  # in the order they run: the paper's comparison first
    'none-ssl': None,
    'joindet': dict(),
    'detreg': dict(online=SS),
    'updetr': dict(online=CROPS),
    'none-random': None,
    'joindet-ss-r0': dict(r0_generator=SS),
    'joindet-3cuts': dict(num_cuts=3),
    'joindet-direct': dict(mode='direct'),
    'joindet-r0-fixed': dict(mode='fixed'),
}
LABELS = {
    'none-ssl': 'no detector pretraining (stage-0 backbone)',
    'none-random': 'no detector pretraining (random backbone)',
    'updetr': 'UP-DETR-style random crops',
    'detreg': 'DETReg (selective search)',
    'joindet': 'JoinDet',
    'joindet-direct': 'JoinDet, direct replacement',
    'joindet-r0-fixed': 'JoinDet, R0 fixed',
    'joindet-ss-r0': 'JoinDet refining selective-search R0',
    'joindet-3cuts': 'JoinDet, 3 cuts per image',
}
SIZES = dict(
    full=dict(
        num_unlabeled=1000,
        num_train=2000,
        num_val=200,
        ssl_iters=800,
        pretrain_epochs=6,
        update_interval=2,
        finetune_iters=800,
        batch_size=8,
        ssl_batch_size=32),
    quick=dict(
        num_unlabeled=8,
        num_train=40,
        num_val=4,
        ssl_iters=2,
        pretrain_epochs=1,
        update_interval=1,
        finetune_iters=2,
        batch_size=4,
        ssl_batch_size=4))


def pretrain_config(arm: str,
                    spec: Dict,
                    unlabeled: Dict,
                    backbone: str,
                    sz: Dict,
                    seed: int,
                    image_size: int = 128):
    """The arm's pretraining: JoinDet's config with the arm's change."""
    cfg = resolve_pretrain(
        backbone=backbone,
        image_size=image_size,
        epochs=sz['pretrain_epochs'],
        update_interval=sz['update_interval'],
        batch_size=sz['batch_size'],
        seed=seed,
        **unlabeled)
    hook = cfg.custom_hooks[0]
    hook.max_priors = PRIORS_PER_IMAGE
    for t in find_pipeline(cfg.train_dataloader.dataset):
        if t['type'] == 'LoadPriors':
            t['max_priors'] = PRIORS_PER_IMAGE
    if 'mode' in spec:
        hook.mode = spec['mode']
    if 'r0_generator' in spec:
        hook.r0_generator = spec['r0_generator']
    if 'num_cuts' in spec:
        for key in ('region_prior_generator', 'backbone_prior_generator'):
            cfg.model[key].num_cuts = spec['num_cuts']
    if 'online' in spec:  # the baselines: priors recomputed per sample
        loader = cfg.train_dataloader
        pipeline = [
            dict(type='GenerateImagePriors', generator=spec['online'])
            if t['type'] == 'LoadPriors' else t
            for t in loader.dataset.pipeline
        ]
        loader.dataset = dict(loader.dataset.dataset, pipeline=pipeline)
        cfg.custom_hooks = [
            h for h in cfg.custom_hooks if h['type'] != 'PriorUpdateHook'
        ]
    return cfg


def online_prior_recall(generator: Dict, unlabeled: Dict,
                        gt_file: str) -> Dict:
    """One draw of an online generator on the pretraining images, scored."""
    import cv2
    from mmdet.registry import TASK_UTILS
    with open(unlabeled['images']) as f:
        images = sorted(json.load(f)['images'], key=lambda im: im['id'])
    with open(gt_file) as f:
        coco = json.load(f)
    gts = {im['id']: [] for im in images}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        gts[a['image_id']].append([x, y, x + w, y + h])
    gen = TASK_UTILS.build(dict(generator, seed=0))
    boxes = [
        gen.generate(
            [cv2.imread(osp.join(unlabeled['image_root'],
                                 im['file_name']))])[0].bboxes.numpy()
        for im in images
    ]
    stats = box_recall([np.array(gts[im['id']]) for im in images], boxes)
    return dict(
        round=0,
        mode='online (one draw)',
        priors_per_image=float(np.mean([len(b) for b in boxes])),
        **{
            k: v
            for k, v in stats.items() if k.startswith('AR')
        })


def summarise(rows: List[Dict], arms, splits) -> Dict:
    """Mean and standard deviation over seeds per (arm, split)."""
    out = {}
    for arm in arms:
        for split in splits:
            got = [r for r in rows if r['arm'] == arm and r['split'] == split]
            if not got:
                continue
            cell = dict(seeds=len(got))
            for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50',
                        'agnostic/bbox_mAP_50', 'agnostic/AR@100'):
                vals = np.array([100 * r['metrics'][key] for r in got])
                cell[key] = (float(vals.mean()), float(vals.std()))
            out[f'{arm}@{split}'] = cell
    return out


def write_outputs(folder: str, rows: List[Dict], priors: Dict, arms, splits,
                  meta: Dict) -> None:
    summary = summarise(rows, arms, splits)
    write_bytes_atomic(
        osp.join(folder, 'results.json'),
        json.dumps(
            dict(meta=meta, runs=rows, summary=summary, priors=priors),
            indent=1).encode())
    head = ['arm'] + [
        f'{s}%: {m}' for s in splits
        for m in ('AP', 'AP50', 'agn. AP50', 'agn. AR@100')
    ]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for arm in arms:
        cells = [LABELS[arm]]
        for s in splits:
            cell = summary.get(f'{arm}@{s}')
            for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50',
                        'agnostic/bbox_mAP_50', 'agnostic/AR@100'):
                cells.append('-' if cell is None else
                             f'{cell[key][0]:.2f} ± {cell[key][1]:.2f} '
                             f'({cell["seeds"]})')
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += [
        '', '| arm | round | written by | priors/img | AR@10 | AR@30 | '
        'AR50@30 |', '| --- | --- | --- | --- | --- | --- | --- |'
    ]
    for arm, rounds in priors.items():
        for r in rounds:
            lines.append(
                f'| {LABELS[arm]} | {r["round"]} | {r["mode"]} | '
                f'{r["priors_per_image"]:.1f} | {100 * r["AR@10"]:.1f} | '
                f'{100 * r["AR@30"]:.1f} | {100 * r["AR50@30"]:.1f} |')
    write_bytes_atomic(
        osp.join(folder, 'table.md'), ('\n'.join(lines) + '\n').encode())
    plot(folder, summary, priors, arms, splits)


def plot(folder, summary, priors, arms, splits) -> None:
    import io

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / max(1, len(splits))
    for ax, key in zip(axes, ('coco/bbox_mAP_50', 'agnostic/bbox_mAP_50')):
        for j, s in enumerate(splits):
            xs, ys, es = [], [], []
            for i, arm in enumerate(arms):
                cell = summary.get(f'{arm}@{s}')
                if cell:
                    xs.append(i + j * width)
                    ys.append(cell[key][0])
                    es.append(cell[key][1])
            ax.bar(xs, ys, width, yerr=es, capsize=3, label=f'{s}% labels')
        ax.set_xticks(np.arange(len(arms)) + width * (len(splits) - 1) / 2)
        ax.set_xticklabels(arms, rotation=40, ha='right', fontsize=8)
        ax.set_ylabel(key.replace('bbox_', '') + ' (mean ± std over seeds)')
        ax.grid(axis='y', alpha=0.3)
        ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=110, bbox_inches='tight')
    plt.close(fig)
    write_bytes_atomic(osp.join(folder, 'ap_by_arm.png'), buf.getvalue())
    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, rounds in priors.items():
        ax.plot([r['round'] for r in rounds],
                [100 * r['AR50@30'] for r in rounds],
                marker='o',
                label=arm)
    ax.set_xlabel('round')
    ax.set_ylabel('prior recall at IoU 0.5, 30 boxes (%)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=110, bbox_inches='tight')
    plt.close(fig)
    write_bytes_atomic(
        osp.join(folder, 'prior_recall_by_round.png'), buf.getvalue())


def run(args) -> str:
    check_device(args.device)
    set_processes(args.nproc)
    sz = dict(SIZES['quick' if args.quick else 'full'])
    root, data = args.work_dir, args.data_root
    start = time.perf_counter()
    Stage('data', 'proxy data', osp.join(root, 'data')).run(lambda st: dict(
        counts=build_proxy_dataset(
            data,
            num_unlabeled=sz['num_unlabeled'],
            num_train=sz['num_train'],
            num_val=sz['num_val'],
            blend='hard',
            backgrounds='textures',
            seed=0,
            progress=True)['manifest']['counts']))
    unlabeled = dict(
        images=osp.join(data, 'unlabeled', 'unlabeled.json'),
        image_root=osp.join(data, 'unlabeled', 'images'))
    gt_file = osp.join(data, 'unlabeled', 'unlabeled_gt.json')
    ssl = own_data.ssl(
        work_dir=osp.join(root, 'ssl'),
        iters=sz['ssl_iters'],
        batch_size=sz['ssl_batch_size'],
        **unlabeled)
    rows, priors = [], {}
    meta = dict(
        sizes=sz,
        arms=args.arms,
        splits=args.splits,
        seeds=args.seeds,
        data_root=data)
    pre_cfg_path = None
    for arm in args.arms:
        spec = ARMS[arm]
        pre_dir = osp.join(root, arm, 'pretrain')
        if spec is not None:
            cfg = pretrain_config(
                arm, spec, unlabeled, ssl['backbone'], sz, seed=0)
            pre = own_data.run_pretrain_config(cfg, pre_dir)
            pre_cfg_path = pre['config']
            priors[arm] = ([
                online_prior_recall(spec['online'], unlabeled, gt_file)
            ] if 'online' in spec else score_prior_rounds(
                pre['priors'], gt_file))
        for split in args.splits:
            labeled = dict(
                train_json=osp.join(data, 'train', f'train_{split}pct.json'),
                val_json=osp.join(data, 'val', 'val.json'),
                images=osp.join(data, 'train', 'images'),
                val_images=osp.join(data, 'val', 'images'))
            with open(labeled['train_json']) as f:
                n = len(json.load(f)['images'])
            per_epoch = max(1, -(-n // sz['batch_size']))
            epochs = max(1, round(sz['finetune_iters'] / per_epoch))
            for seed in args.seeds:
                run_dir = osp.join(root, arm, f'{split}pct', f'seed{seed}')
                if spec is None:
                    ft = own_data.finetune(
                        None,
                        work_dir=osp.join(run_dir, 'finetune'),
                        backbone=None
                        if arm == 'none-random' else ssl['backbone'],
                        pretrain_config=pre_cfg_path or _joindet_config(
                            root, unlabeled, ssl['backbone'], sz),
                        epochs=epochs,
                        batch_size=min(sz['batch_size'], n),
                        seed=seed,
                        evals=0,
                        **labeled)
                else:
                    ft = own_data.finetune(
                        pre_dir,
                        work_dir=osp.join(run_dir, 'finetune'),
                        epochs=epochs,
                        batch_size=min(sz['batch_size'], n),
                        seed=seed,
                        evals=0,
                        **labeled)
                ev = own_data.evaluate(
                    osp.dirname(ft['config']),
                    osp.join(run_dir, 'evaluate'),
                    num_vis=0)
                rows.append(
                    dict(
                        arm=arm,
                        split=split,
                        seed=seed,
                        metrics=ev['metrics'],
                        epochs=epochs))
                write_outputs(
                    root, rows, priors, args.arms, args.splits,
                    dict(
                        meta,
                        minutes=round((time.perf_counter() - start) / 60, 1)))
    print(f'\nresults: {osp.join(root, "table.md")}, '
          f'{osp.join(root, "results.json")}')
    return osp.join(root, 'table.md')


def _joindet_config(root, unlabeled, backbone, sz) -> str:
    """The pretraining config whose model sizes the 'none' arms finetune
    (written beside the runs; nothing is pretrained with it)."""
    return own_data.write_config(
        resolve_pretrain(
            backbone=backbone,
            epochs=sz['pretrain_epochs'],
            update_interval=sz['update_interval'],
            batch_size=sz['batch_size'],
            **unlabeled), root, 'model_sizes.py')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/validity')
    parser.add_argument('--data-root', default='data/proxy_validity')
    parser.add_argument(
        '--arms', nargs='+', default=list(ARMS), choices=list(ARMS))
    parser.add_argument(
        '--splits', nargs='+', type=int, default=[1, 10], choices=[1, 10])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--nproc',
        type=int,
        default=1,
        help='processes per run: one per GPU, or gloo CPU processes')
    parser.add_argument(
        '--quick', action='store_true', help='tiny sizes (tests)')
    args = parser.parse_args(argv)
    try:
        run(args)
    except own_data.checks.JobInputError as e:
        sys.exit(f'validity.py: error: {e}')


if __name__ == '__main__':
    main()
