# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The job's report: numbers from the stages' own outputs, plots of their
logged scalars, and a ``report.md`` that links them."""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmdet_joindet.utils.atomic import write_bytes_atomic

__all__ = [
    'read_scalars', 'test_metrics', 'plot_losses', 'plot_ap_by_epoch',
    'write_report'
]


def read_scalars(work_dir: str) -> List[Dict]:
    """Every line of ``<work_dir>/<timestamp>/vis_data/scalars.json``.

    A resumed run adds a timestamp folder: the runs are read in time order
    and a later line for the same (kind, step) replaces an earlier one.
    """
    rows: Dict = {}
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                row = json.loads(line)
                kind = 'train' if 'loss' in row else 'val'
                rows[(kind, row.get('step'))] = row
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1] or 0))]


def test_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics ``tools/test.py`` wrote (``<timestamp>/<timestamp>.json``
    in its work dir; the latest run's)."""
    found = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    found = [
        p for p in found
        if osp.basename(osp.dirname(p)) == osp.splitext(osp.basename(p))[0]
    ]
    if not found:
        raise FileNotFoundError(f'no test metrics under {work_dir}')
    with open(found[-1]) as f:
        metrics = json.load(f)
    # mmengine adds the test loop's timings; they are not results
    return {k: v for k, v in metrics.items() if k not in ('time', 'data_time')}


def _figure():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> str:
    import io
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=110, bbox_inches='tight')
    write_bytes_atomic(path, buffer.getvalue())
    return path


def plot_losses(runs: Dict[str, List[Dict]], path: str) -> str:
    """One panel per run: its total loss by iteration (and its parts)."""
    plt = _figure()
    fig, axes = plt.subplots(
        1, len(runs), figsize=(4.5 * len(runs), 3.2), squeeze=False)
    for ax, (name, rows) in zip(axes[0], runs.items()):
        train = [r for r in rows if 'loss' in r]
        steps = [r['step'] for r in train]
        ax.plot(steps, [r['loss'] for r in train], label='loss', lw=1.5)
        for key in ('loss_cls', 'loss_bbox', 'loss_iou', 'loss_emb'):
            if train and key in train[0]:
                ax.plot(
                    steps, [r.get(key) for r in train],
                    label=key,
                    lw=0.8,
                    alpha=0.8)
        ax.set_title(name)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    plt.close(fig)
    return _save(fig, path)


AP_KEYS = ('coco/bbox_mAP', 'coco/bbox_mAP_50')


def plot_ap_by_epoch(runs: Dict[str, List[Dict]],
                     path: str,
                     keys: Sequence[str] = AP_KEYS) -> str:
    """Validation AP and AP50 by epoch, every run on the same axes."""
    plt = _figure()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.2))
    for ax, key in zip(axes, keys):
        for name, rows in runs.items():
            val = [r for r in rows if key in r]
            ax.plot([r['step'] for r in val], [100 * r[key] for r in val],
                    marker='o',
                    ms=3,
                    label=name)
        ax.set_title(key.split('/')[-1].replace('bbox_', ''))
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    plt.close(fig)
    return _save(fig, path)


def _pct(x: Optional[float]) -> str:
    return '-' if x is None or x < 0 else f'{100 * x:.1f}'


def write_report(folder: str, summary: Dict, figures: Dict[str, str]) -> str:
    """``report.md`` (and ``report.json``: the numbers, without times).

    Args:
        folder (str): The report folder.
        summary (dict): ``stages`` (name -> title, seconds, config,
            skipped), ``seed``, ``results`` (arm -> metrics), ``priors``
            (rows of :func:`score_prior_rounds`), ``data`` (a sentence),
            ``notes`` (list of sentences).
        figures (dict): Caption -> PNG path (relative to ``folder``).

    Returns:
        str: The path of ``report.md``.
    """
    lines = ['# JoinDet main job: report', '']
    lines += [summary['data'], '']
    lines += ['## Detection after finetuning (val)', '']
    lines += [
        '| detector | AP | AP50 | AP75 | class-agnostic AP | class-agnostic '
        'AR@100 |', '| --- | --- | --- | --- | --- | --- |'
    ]
    for arm, m in summary['results'].items():
        lines.append(f'| {arm} | {_pct(m.get("coco/bbox_mAP"))} | '
                     f'{_pct(m.get("coco/bbox_mAP_50"))} | '
                     f'{_pct(m.get("coco/bbox_mAP_75"))} | '
                     f'{_pct(m.get("agnostic/bbox_mAP"))} | '
                     f'{_pct(m.get("agnostic/AR@100"))} |')
    lines += ['']
    if summary.get('priors'):
        lines += [
            '## Object priors by round (against the pretraining images\' '
            'withheld boxes)', '',
            '| round | written by | priors/img | AR@10 | AR@30 | AR50@10 | '
            'AR50@30 |', '| --- | --- | --- | --- | --- | --- | --- |'
        ]
        for r in summary['priors']:
            lines.append(f'| {r["round"]} | {r["mode"]} | '
                         f'{r["priors_per_image"]:.1f} | {_pct(r["AR@10"])} |'
                         f' {_pct(r["AR@30"])} | {_pct(r["AR50@10"])} | '
                         f'{_pct(r["AR50@30"])} |')
        lines += ['']
    for caption, png in figures.items():
        lines += [f'![{caption}]({png})', '', f'*{caption}*', '']
    lines += [
        '## What ran', '', f'Seed: {summary["seed"]}.', '',
        '| stage | seconds | config (resolved, in its work dir) |',
        '| --- | --- | --- |'
    ]
    for stage in summary['stages'].values():
        note = ' (done by an earlier run)' if stage.get('skipped') else ''
        lines.append(f'| {stage["title"]} | {stage["seconds"]:.0f}{note} | '
                     f'{stage.get("config") or "-"} |')
    total = sum(s['seconds'] for s in summary['stages'].values())
    lines += ['', f'Total: {total / 60:.1f} minutes.', '']
    for note in summary.get('notes', []):
        lines += [note, '']
    path = osp.join(folder, 'report.md')
    write_bytes_atomic(path, '\n'.join(lines).encode())
    numbers = {k: summary[k] for k in ('results', 'priors', 'seed')}
    write_bytes_atomic(
        osp.join(folder, 'report.json'),
        json.dumps(numbers, indent=1, sort_keys=True).encode())
    return path
