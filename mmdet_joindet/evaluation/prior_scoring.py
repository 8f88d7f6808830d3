# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Score the rounds of a prior store against a COCO json with boxes.

Paper Fig. 1(b): the recall of the object priors should rise round after
round. Each round is scored with :func:`.box_recall` (pycocotools
``useCats=0``, one-to-one matching), so prior recall and a detector's
class-agnostic recall are one definition.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.fileio import load

from mmdet_joindet.datasets.fingerprint import image_list_fingerprint
from mmdet_joindet.datasets.prior_store import PriorStore
from .class_agnostic import box_recall

__all__ = ['score_prior_rounds', 'coco_gt_in_store_order', 'PRIOR_MAX_DETS']

# DETReg and JoinDet keep 30 priors per image: AR@30 is the figure to read.
PRIOR_MAX_DETS = (1, 10, 30, 100)


def coco_gt_in_store_order(
        ann_file: str,
        fingerprint: Optional[str] = None) -> Tuple[List[np.ndarray], str]:
    """Ground truth boxes of a COCO json, one array per store index.

    A store written for :class:`UnlabeledCocoDataset` indexes the json's
    images sorted by id; one written for :class:`ImageFolderDataset` by
    relative path. With ``fingerprint`` (the round's), the order whose
    :func:`image_list_fingerprint` matches is used; without it, id order.

    Args:
        ann_file (str): COCO json with ``images`` and ``annotations``
            (``bbox`` xywh in pixels; crowd boxes are left out).
        fingerprint (str, optional): The round's image-list fingerprint.

    Returns:
        tuple: ``[G_i, 4]`` float64 xyxy boxes per store index, and the
        order used (``'id'`` or ``'file_name'``).

    Raises:
        ValueError: The json lists no image, or neither order matches
            ``fingerprint`` (the store was written for other images).
    """
    coco = load(ann_file)
    images = (coco.get('images') or []) if isinstance(coco, dict) else []
    if not images:
        raise ValueError(f'{ann_file}: no image in its "images" list')
    orders = dict(
        id=sorted(images, key=lambda im: im['id']),
        file_name=sorted(images, key=lambda im: im['file_name']))
    chosen = 'id'
    if fingerprint is not None:
        found = [
            name for name, imgs in orders.items() if image_list_fingerprint(
                im['file_name'] for im in imgs) == fingerprint
        ]
        if not found:
            raise ValueError(
                f'{ann_file} does not list the images the prior store was '
                f'written for (fingerprint {fingerprint}): score a store '
                'with the json (or image folder) its pretraining read')
        chosen = found[0]
    boxes: Dict[int, List[List[float]]] = {im['id']: [] for im in images}
    for ann in coco.get('annotations', []):
        if ann.get('iscrowd', 0) or ann['image_id'] not in boxes:
            continue
        x, y, w, h = ann['bbox']
        boxes[ann['image_id']].append([x, y, x + w, y + h])
    return [
        np.asarray(boxes[im['id']], np.float64).reshape(-1, 4)
        for im in orders[chosen]
    ], chosen


def score_prior_rounds(
        prior_root: str,
        ann_file: str,
        rounds: Optional[Sequence[int]] = None,
        max_dets: Sequence[int] = PRIOR_MAX_DETS) -> List[Dict[str, float]]:
    """Class-agnostic AR of every (or some) round of a prior store.

    Args:
        prior_root (str): The store's folder (``<work_dir>/priors``).
        ann_file (str): COCO json with the ground truth of the store's
            images (:func:`coco_gt_in_store_order`).
        rounds (Sequence[int], optional): The rounds to score; all rounds
            on disk by default.
        max_dets (Sequence[int]): Priors per image at which AR is read.

    Returns:
        list[dict]: One row per round: ``round``, ``mode`` (what wrote it:
        ``'R0'``, ``'box_smooth'``, ...), ``images``, ``priors_per_image``,
        and :func:`.box_recall`'s ``AR@k`` / ``AR50@k`` (in [0, 1]) for
        every ``k``.

    Raises:
        FileNotFoundError: ``prior_root`` holds no round.
    """
    store = PriorStore(prior_root)
    on_disk = store.rounds()
    if not on_disk:
        raise FileNotFoundError(
            f'no prior round under {osp.abspath(prior_root)}: give the '
            "store's folder (by default <work_dir>/priors)")
    rounds = on_disk if rounds is None else list(rounds)
    missing = sorted(set(rounds) - set(on_disk))
    if missing:
        raise FileNotFoundError(f'rounds {missing} are not in {prior_root} '
                                f'(it holds {on_disk})')
    rows, gt_cache = [], {}
    for r in rounds:
        loaded = store.load(r)
        if loaded.fingerprint not in gt_cache:
            gt_cache[loaded.fingerprint] = coco_gt_in_store_order(
                ann_file, loaded.fingerprint)[0]
        gt = gt_cache[loaded.fingerprint]
        if len(gt) != loaded.num_images:
            raise ValueError(f'round {r} holds {loaded.num_images} images, '
                             f'{ann_file} {len(gt)}')
        boxes, scores = loaded.to_lists()
        stats = box_recall(gt, boxes, scores, max_dets=max_dets)
        row = dict(
            round=r,
            mode=loaded.info.get('mode', ''),
            images=loaded.num_images,
            priors_per_image=loaded.num_boxes / max(loaded.num_images, 1))
        for k in max_dets:
            row[f'AR@{k}'] = stats[f'AR@{k}']
            row[f'AR50@{k}'] = stats[f'AR50@{k}']
        rows.append(row)
    return rows
