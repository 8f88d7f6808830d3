# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""JoinDet's prediction heads and set prediction loss (paper Sec. 2.4)."""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmdet.models.dense_heads import DeformableDETRHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import ConfigType, InstanceList, reduce_mean
from mmengine.structures import InstanceData
from scipy.optimize import brentq
from torch import Tensor


def focal_decision_threshold(alpha: float, gamma: float) -> float:
    """The score a sigmoid focal loss gives a query of posterior 1/2.

    A classifier trained with the focal loss (Lin et al., 2017) on a query
    that is foreground with probability ``q`` settles at the score ``p``
    minimising the expected loss::

        E(p) = -alpha q (1 - p)^gamma log p
               - (1 - alpha) (1 - q) p^gamma log(1 - p)

    The minimiser ``p*(q)`` rises with ``q``, so the 2-way argmax of the
    paper (``q > 1/2``, eq. 5) is ``p > p*(1/2)``. ``p*(1/2)`` is 1/2 only
    when ``alpha = 1/2``; with ``gamma = 0`` it is ``alpha``; for mmdet's
    Deformable DETR (alpha 0.25, gamma 2) it is 0.3988. Found as the root of
    ``dE/dp`` at ``q = 1/2`` (``dE/dp`` rises from -inf to +inf on (0, 1)).

    Args:
        alpha (float): The focal loss's weight of positives, in (0, 1).
        gamma (float): Its focusing exponent, >= 0.

    Returns:
        float: The threshold on ``sigmoid(logit)``, in (0, 1).
    """
    if not 0 < alpha < 1 or not gamma >= 0:
        raise ValueError('the focal loss needs 0 < alpha < 1 and gamma >= 0, '
                         f'got alpha={alpha}, gamma={gamma}')

    def slope(p: float) -> float:  # 2 dE/dp at q = 1/2
        pos = (1 - p)**gamma / p - gamma * (1 - p)**(gamma - 1) * np.log(p)
        neg = p**gamma / (1 - p) - gamma * p**(gamma - 1) * np.log1p(-p)
        return (1 - alpha) * neg - alpha * pos

    return float(brentq(slope, 1e-12, 1 - 1e-12, xtol=1e-12))


@MODELS.register_module()
class JoinDetHead(DeformableDETRHead):
    """Deformable DETR head with JoinDet's embedding branch.

    Paper Sec. 2.4 (following DETReg): three heads on every decoder query
    ``v_j``,

    - ``f_cls``: foreground vs background. mmdet's sigmoid convention
      makes this one logit per query (``num_classes=1``; background is the
      implicit class), which is the paper's 2-way classifier. Its argmax
      (eq. 5: foreground when the posterior exceeds 1/2) is
      ``sigmoid(logit) > foreground_threshold``: 0.5 under a cross-entropy
      loss, but a focal loss calibrates scores lower, and the score that
      means "posterior 1/2" is :func:`focal_decision_threshold` (0.399 for
      mmdet's alpha 0.25, gamma 2);
    - ``f_box``: mmdet's box MLP (2 hidden layers of ``embed_dims``, ReLU);
    - ``f_emb``: MLP with 2 hidden layers of 256 (ReLU) -> ``emb_dims``,
      on the **last** decoder layer only; trained with L1 against the frozen
      SwAV feature of the matched prior's image region.

    Loss (eq. 10): Hungarian matching with mmdet's assigner and costs, then
    focal classification + L1 + GIoU on every decoder layer (mmdet's
    ``DeformableDETRHead``) plus ``loss_emb`` on the last layer:
    ``sum |z_j - z_sigma(j)|`` over matched pairs and embedding dimensions,
    divided by the number of matched priors (DETReg's normalisation),
    times ``loss_emb.loss_weight`` (1 by default).

    ``emb_dims`` is injected by :class:`JoinDet` from its embedding
    extractor (512 for the C3 stage of a ResNet-50, as DETReg); the paper's
    text gives 256, DETReg's SwAV target is 512-d.

    Args:
        emb_dims (int): Output size of ``f_emb``.
        emb_hidden_dims (int): Hidden size of ``f_emb``. Defaults to 256.
        loss_emb (dict): Config of the embedding loss. Defaults to L1 with
            weight 1.
    """

    def __init__(self,
                 *args,
                 emb_dims: int,
                 emb_hidden_dims: int = 256,
                 loss_emb: ConfigType = dict(type='L1Loss', loss_weight=1.0),
                 num_classes: int = 1,
                 **kwargs) -> None:
        if num_classes != 1:
            raise ValueError('JoinDetHead predicts foreground vs background: '
                             f'num_classes must be 1, got {num_classes}')
        self.emb_dims = emb_dims
        self.emb_hidden_dims = emb_hidden_dims
        super().__init__(*args, num_classes=num_classes, **kwargs)
        self.loss_emb = MODELS.build(loss_emb)
        self._foreground_threshold = self._argmax_threshold(self.loss_cls)

    def _init_layers(self) -> None:
        """Add ``f_emb`` to the classification and regression branches."""
        super()._init_layers()
        hidden = self.emb_hidden_dims
        self.emb_branch = nn.Sequential(
            nn.Linear(self.embed_dims, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, self.emb_dims))

    def loss(self, hidden_states: Tensor, references: List[Tensor],
             enc_outputs_class: Tensor, enc_outputs_coord: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """mmdet's Deformable DETR losses plus ``loss_emb``.

        Args:
            hidden_states (Tensor): ``[num_layers, B, num_queries, dim]``.
            references (list[Tensor]): As :class:`DeformableDETRHead`.
            enc_outputs_class (Tensor): Two-stage proposals' scores or None.
            enc_outputs_coord (Tensor): Two-stage proposals' boxes or None.
            batch_data_samples (list[:obj:`DetDataSample`]): Each with
                ``gt_instances`` holding the priors: ``bboxes`` ``[K, 4]``
                xyxy in network-input pixels, ``labels`` (all 0) and
                ``embeddings`` ``[K, emb_dims]``.

        Returns:
            dict[str, Tensor]: mmdet's ``loss_cls``/``loss_bbox``/
            ``loss_iou`` (and per-layer ``d{i}.*``, ``enc_*``) plus
            ``loss_emb``.
        """
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        cls_scores, bbox_preds = self(hidden_states, references)
        losses = self.loss_by_feat(cls_scores, bbox_preds, enc_outputs_class,
                                   enc_outputs_coord, batch_gt_instances,
                                   batch_img_metas)
        emb_preds = self.emb_branch(hidden_states[-1])
        losses['loss_emb'] = self.loss_emb_by_feat(emb_preds, cls_scores[-1],
                                                   bbox_preds[-1],
                                                   batch_gt_instances,
                                                   batch_img_metas)
        return losses

    def loss_emb_by_feat(self, emb_preds: Tensor, cls_scores: Tensor,
                         bbox_preds: Tensor, batch_gt_instances: InstanceList,
                         batch_img_metas: List[dict]) -> Tensor:
        """Embedding L1 on the last layer's Hungarian matches.

        The matching is recomputed with the assigner the box losses use, on
        the same last-layer predictions, so it is the same assignment.
        Reusing the box losses' matches would mean re-spelling mmdet's
        ``_get_targets_single``, which returns the matched queries but not
        their priors; the second match costs 1.5-2 ms of a 3-5 s CPU step
        (300 queries, 6 decoder layers, 30 priors per image, batch 2).

        Args:
            emb_preds (Tensor): ``[B, num_queries, emb_dims]``.
            cls_scores (Tensor): Last layer's logits ``[B, num_queries, 1]``.
            bbox_preds (Tensor): Last layer's boxes ``[B, num_queries, 4]``,
                normalised ``(cx, cy, w, h)``.
            batch_gt_instances (list[:obj:`InstanceData`]): Priors with
                ``embeddings`` ``[K, emb_dims]``.
            batch_img_metas (list[dict]): With ``img_shape``.

        Returns:
            Tensor: Scalar loss; 0 (still in the graph) with no priors.
        """
        preds, targets = [], []
        for emb, cls, box, gt, meta in zip(emb_preds, cls_scores, bbox_preds,
                                           batch_gt_instances,
                                           batch_img_metas):
            query_inds, gt_inds = self.match(cls, box, gt, meta)
            preds.append(emb[query_inds])
            targets.append(gt.embeddings[gt_inds])
        preds = torch.cat(preds)
        targets = torch.cat(targets).to(preds.dtype)
        num_pos = preds.new_tensor([len(preds)])
        num_pos = torch.clamp(reduce_mean(num_pos), min=1).item()
        if len(preds) == 0:
            return emb_preds.sum() * 0
        return self.loss_emb(preds, targets.detach(), avg_factor=num_pos)

    def match(self, cls_score: Tensor, bbox_pred: Tensor,
              gt_instances: InstanceData,
              img_meta: dict) -> Tuple[Tensor, Tensor]:
        """Hungarian matching of one image's queries to its priors.

        Args:
            cls_score (Tensor): ``[num_queries, 1]`` logits.
            bbox_pred (Tensor): ``[num_queries, 4]`` normalised cxcywh.
            gt_instances (:obj:`InstanceData`): ``bboxes`` xyxy pixels.
            img_meta (dict): With ``img_shape``.

        Returns:
            tuple[Tensor]: Matched query indices ``[P]`` and the indices of
            their priors ``[P]`` (long).
        """
        if len(gt_instances) == 0:
            empty = cls_score.new_zeros(0, dtype=torch.long)
            return empty, empty
        img_h, img_w = img_meta['img_shape']
        factor = bbox_pred.new_tensor([img_w, img_h, img_w, img_h])
        pred = InstanceData(
            scores=cls_score, bboxes=bbox_cxcywh_to_xyxy(bbox_pred) * factor)
        assign = self.assigner.assign(
            pred_instances=pred, gt_instances=gt_instances, img_meta=img_meta)
        query_inds = torch.nonzero(assign.gt_inds > 0).squeeze(-1)
        return query_inds, assign.gt_inds[query_inds] - 1

    @staticmethod
    def _argmax_threshold(loss: nn.Module) -> float:
        """:func:`focal_decision_threshold` of a sigmoid focal loss, 0.5
        of a sigmoid cross-entropy; checked when the head is built."""
        if not getattr(loss, 'use_sigmoid', False):
            raise ValueError('JoinDetHead needs a sigmoid classification '
                             f'loss (use_sigmoid=True), got {loss}')
        if hasattr(loss, 'alpha') and hasattr(loss, 'gamma'):
            return focal_decision_threshold(loss.alpha, loss.gamma)
        return 0.5

    @property
    def foreground_threshold(self) -> float:
        """The score above which ``f_cls``'s argmax is foreground (eq. 5)
        under the head's classification loss."""
        return self._foreground_threshold

    def foreground_predictions(
            self,
            hidden_states: Tensor,
            references: List[Tensor],
            batch_img_metas: List[dict],
            score_thr: Optional[float] = None) -> InstanceList:
        """The paper's foreground predictions ``P^f`` (Sec. 2.2, eq. 5).

        Every query of the last decoder layer whose foreground score
        exceeds ``score_thr``, by default :attr:`foreground_threshold` (the
        2-way argmax under the head's loss).

        Returns:
            list[:obj:`InstanceData`]: Per image ``bboxes`` ``[P, 4]`` xyxy
            in network-input pixels clipped to ``img_shape`` (the unit of
            the eigen map's grid; :meth:`JoinDet.extract_priors` maps them
            to the original image) and ``scores`` ``[P]``, highest first.
        """
        if score_thr is None:
            score_thr = self.foreground_threshold
        cls_scores, bbox_preds = self(hidden_states, references)
        results = []
        for cls, box, meta in zip(cls_scores[-1], bbox_preds[-1],
                                  batch_img_metas):
            scores = cls.sigmoid()[:, 0]
            keep = scores > score_thr
            scores, order = scores[keep].sort(descending=True)
            img_h, img_w = meta['img_shape']
            boxes = bbox_cxcywh_to_xyxy(box[keep][order])
            size = boxes.new_tensor([img_w, img_h, img_w, img_h])
            # clipped to the image, as mmdet's DETR heads before rescaling
            boxes = (boxes * size).clamp(min=0).minimum(size)
            results.append(InstanceData(bboxes=boxes, scores=scores))
        return results
