# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The paper's Figure 6 (eigen map and priors round by round) and
predictions against ground truth, for chosen images of a config's data."""
import copy
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmdet_joindet.datasets.prior_store import PriorStore
from mmdet_joindet.evaluation.prior_scoring import coco_gt_in_store_order
from .prior_figure import (GT_COLOUR, ROUND_COLOUR, draw_boxes,
                           eigen_map_panel, panel_grid, read_rgb)

__all__ = ['prior_figure', 'prediction_figure']


def _prior_hook(cfg: Config) -> dict:
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type') == 'PriorUpdateHook':
            return hook
    raise ValueError('the config has no PriorUpdateHook: give a JoinDet '
                     'pretraining config')


def _build_model(cfg: Config, checkpoint: str, device: str):
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None  # the checkpoint holds every weight
    model = MODELS.build(model_cfg)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    return model.to(device).eval()


def prior_figure(cfg: Config,
                 prior_root: str,
                 indices: Sequence[int],
                 checkpoint: Optional[str] = None,
                 ann_file: Optional[str] = None,
                 rounds: Optional[Sequence[int]] = None,
                 device: str = 'cpu',
                 height: int = 192) -> np.ndarray:
    """Paper Fig. 6 for images ``indices`` of a pretraining's data.

    One row per image: the image; with ``checkpoint``, its eigen attention
    map (the encoder level of ``region_prior_generator``, through the
    prior hook's ``infer_pipeline``) with the foreground outlined; the
    priors of each round (orange); with ``ann_file``, the ground truth
    (green).

    Args:
        cfg (Config): A JoinDet pretraining config (its training dataset,
            its ``PriorUpdateHook``).
        prior_root (str): The pretraining's prior store.
        indices (Sequence[int]): Dataset (= store) indices of the images.
        checkpoint (str, optional): A JoinDet checkpoint for the maps.
        ann_file (str, optional): COCO json with the same images' boxes.
        rounds (Sequence[int], optional): Rounds shown; all by default.

    Returns:
        np.ndarray: The figure, RGB uint8.
    """
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    store = PriorStore(prior_root)
    rounds = store.rounds() if rounds is None else list(rounds)
    if not rounds:
        raise FileNotFoundError(f'no prior round under {prior_root}')
    loaded = [store.load(r, dataset.fingerprint()) for r in rounds]
    gt = None
    if ann_file is not None:
        gt = coco_gt_in_store_order(ann_file, dataset.fingerprint())[0]
    model = None if checkpoint is None else _build_model(
        cfg, checkpoint, device)
    view = dataset.test_dataset(_prior_hook(cfg)['infer_pipeline'])
    rows = []
    for idx in indices:
        if not 0 <= idx < len(dataset):
            raise IndexError(f'image index {idx} is not in the dataset of '
                             f'{len(dataset)} images')
        path = dataset.get_data_info(idx)['img_path']
        image = read_rgb(path)
        if image is None:
            raise FileNotFoundError(f'cannot read image {path}')
        row = [(f'#{idx}', image)]
        if model is not None:
            data = model.data_preprocessor(pseudo_collate([view[idx]]), False)
            with torch.no_grad():
                p = model.extract_priors(data['inputs'],
                                         data['data_samples'])[0]
            meta = data['data_samples'][0].metainfo
            row.append(('eigen map',
                        eigen_map_panel(image,
                                        p.eigen_map.cpu().numpy(),
                                        p.fg_mask.cpu().numpy(), p.stride,
                                        meta['img_shape'])))
        for r, priors in zip(rounds, loaded):
            boxes, _ = priors.get(idx)
            row.append((f'round {r} ({len(boxes)})',
                        draw_boxes(image, boxes, ROUND_COLOUR)))
        if gt is not None:
            row.append((f'ground truth ({len(gt[idx])})',
                        draw_boxes(image, gt[idx], GT_COLOUR)))
        rows.append(row)
    return panel_grid(rows, height=height)


def prediction_figure(cfg: Config,
                      checkpoint: str,
                      indices: Sequence[int],
                      score_thr: float = 0.3,
                      device: str = 'cpu',
                      height: int = 192) -> np.ndarray:
    """Predictions (orange, score > ``score_thr``) against the ground truth
    (green) for images ``indices`` of the config's test set.

    Returns:
        np.ndarray: One row per image: ground truth, predictions; RGB uint8.
    """
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if loader is None:
        raise ValueError('the config has no test or val dataloader')
    dataset = DATASETS.build(copy.deepcopy(loader.dataset))
    pipeline = Compose(dataset.pipeline.transforms)
    model = _build_model(cfg, checkpoint, device)
    classes = dataset.metainfo.get('classes', ())
    rows: List = []
    for idx in indices:
        if not 0 <= idx < len(dataset):
            raise IndexError(f'image index {idx} is not in the test set of '
                             f'{len(dataset)} images')
        info = dataset.get_data_info(idx)
        image = read_rgb(info['img_path'])
        data = model.data_preprocessor(
            pseudo_collate([pipeline(copy.deepcopy(info))]), False)
        with torch.no_grad():
            pred = model.predict(data['inputs'],
                                 data['data_samples'])[0].pred_instances
        pred = pred[pred.scores > score_thr]
        gt = np.array([
            i['bbox']
            for i in info.get('instances', []) if not i.get('ignore_flag', 0)
        ], np.float32).reshape(-1, 4)
        names = [
            classes[int(k)] if int(k) < len(classes) else str(int(k))
            for k in pred.labels
        ]
        shown = ', '.join(sorted(set(names)))[:40]
        rows.append([
            (f'#{idx} ground truth ({len(gt)})',
             draw_boxes(image, gt, GT_COLOUR)),
            (f'predictions ({len(pred)}) {shown}',
             draw_boxes(image,
                        pred.bboxes.cpu().numpy(), ROUND_COLOUR)),
        ])
    return panel_grid(rows, height=height)
