# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""COCO metric with every class merged, for ``val_evaluator`` /
``test_evaluator``."""
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Union

from mmdet.datasets.api_wrappers import COCO
from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS
from mmengine.fileio import load
from mmengine.logging import MMLogger

from .class_agnostic import class_agnostic_eval

__all__ = ['ClassAgnosticCocoMetric']


@METRICS.register_module()
class ClassAgnosticCocoMetric(CocoMetric):
    """Class-agnostic COCO AP and AR (pycocotools ``useCats=0``).

    The metric of the paper's Table 4 (a pretrained JoinDet's own 2-way
    predictions on COCO val2017: AP, AP50, AR@1/10/100) and of prior
    quality. It inherits :class:`mmdet.evaluation.CocoMetric`'s result
    collection across ranks, its ground-truth conversion when no
    ``ann_file`` is given, its result json (``outfile_prefix``,
    ``format_only``) and its rounding to 3 decimals; only the evaluation
    differs: every prediction and ground truth box is one class "object"
    (see :func:`.class_agnostic_eval`).

    Reported (under ``prefix``, default ``'agnostic'``): ``bbox_mAP``,
    ``bbox_mAP_50``, ``bbox_mAP_75``, ``bbox_mAP_s/m/l`` (at the largest
    ``proposal_nums``), ``AR@k`` and ``AR50@k`` (IoU 0.5) for each ``k``
    of ``proposal_nums``, ``AR_s/m/l@K`` at the largest. ``-1`` where the
    images hold no ground truth (COCO's convention).

    Args:
        ann_file (str, optional): COCO json with the ground truth boxes.
            Without it the ground truth comes from the data samples'
            ``instances`` (as in ``CocoMetric``).
        proposal_nums (Sequence[int]): Detections per image at which AR is
            read (increasing). Defaults to (1, 10, 100), the paper's.
        iou_thrs (float | Sequence[float], optional): IoU thresholds;
            COCO's 0.50:0.05:0.95 by default.
        format_only, outfile_prefix, backend_args, collect_device, prefix:
            As ``CocoMetric``.
    """
    default_prefix: Optional[str] = 'agnostic'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 proposal_nums: Sequence[int] = (1, 10, 100),
                 iou_thrs: Optional[Union[float, Sequence[float]]] = None,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(
            ann_file=ann_file,
            metric='bbox',
            proposal_nums=proposal_nums,
            iou_thrs=iou_thrs,
            format_only=format_only,
            outfile_prefix=outfile_prefix,
            backend_args=backend_args,
            collect_device=collect_device,
            prefix=prefix)
        if isinstance(self.iou_thrs, float):
            self.iou_thrs = [self.iou_thrs]
        nums = list(self.proposal_nums)
        if not nums or sorted(set(nums)) != nums or nums[0] < 1:
            raise ValueError('proposal_nums must be increasing positive '
                             f'integers, got {nums!r}')

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """``CocoMetric.process``, then every predicted label set to 0
        (the one class of the evaluation)."""
        start = len(self.results)
        super().process(data_batch, data_samples)
        for _, result in self.results[start:]:
            result['labels'] = result['labels'] * 0

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Evaluate the collected ``(gt, prediction)`` pairs."""
        logger: MMLogger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        tmp_dir = None
        if self.outfile_prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            outfile_prefix = osp.join(tmp_dir.name, 'results')
        else:
            outfile_prefix = self.outfile_prefix
        try:
            if self._coco_api is None:
                logger.info('Converting ground truth to coco format...')
                self._coco_api = COCO(
                    self.gt_to_coco_json(
                        gt_dicts=gts, outfile_prefix=outfile_prefix))
            if not self._coco_api.get_cat_ids():
                raise ValueError(
                    f'{type(self).__name__}: the ground truth has no '
                    "category; give it one in its 'categories' list")
            # Any category will do (useCats=0): label 0 -> the first.
            self.cat_ids = self._coco_api.get_cat_ids()
            if self.img_ids is None:
                self.img_ids = self._coco_api.get_img_ids()
            result_files = self.results2json(preds, outfile_prefix)
            if self.format_only:
                logger.info('results are saved in '
                            f'{osp.dirname(outfile_prefix)}')
                return OrderedDict()
            stats = class_agnostic_eval(
                self._coco_api,
                load(result_files['bbox']),
                max_dets=self.proposal_nums,
                iou_thrs=self.iou_thrs,
                img_ids=self.img_ids)
        finally:
            if tmp_dir is not None:
                tmp_dir.cleanup()
        eval_results = OrderedDict((f'bbox_{k}' if k.startswith('mAP') else k,
                                    float(f'{round(v, 3)}'))
                                   for k, v in stats.items())
        logger.info('class-agnostic: ' +
                    ' '.join(f'{k} {v:.3f}' for k, v in eval_results.items()))
        return eval_results
