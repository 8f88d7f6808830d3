# Copyright (c) mmdet_joindet contributors. All rights reserved.
import math

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import bbox_overlaps


@TRANSFORMS.register_module()
class CopyPasteSmallPriors(BaseTransform):
    """Copy small priors' pixels to new places in the same image.

    The paper's "copy & paste with small boxes" (Table 7, after Ghiasi et
    al.'s Simple Copy-Paste): the eigen attention map finds mostly big
    objects, and pasting more small ones balances the priors. The paper
    gives no details, and mmdet's ``CopyPaste`` needs instance masks, so
    this is **our box-only approximation**, within one image:

    With probability ``prob``, up to ``max_pastes`` times: draw a source
    uniformly among the priors whose area (clipped to the image) is below
    ``max_area`` (pixels of the current image, so this runs after the
    geometric transforms, e.g. after large-scale jittering, Sec. 3.1, and
    before padding); draw up to ``max_tries`` integer translations that
    keep its pixel patch (the clipped box rounded outwards to whole pixels)
    inside the image; at the first translation whose box has IoU below
    ``iou_thr`` with every current box (the earlier pastes included), copy
    the patch's pixels there (from the image as it was before any paste)
    and append the translated clipped box with the source's label and
    ignore flag. Boxes the patch covers are left as they are (no occlusion
    handling: the pasted box overlaps none of them much). Randomness comes
    from ``np.random`` (seeded per dataloader worker by mmengine), as in
    mmdet's transforms.

    Required keys: ``img``, ``gt_bboxes`` (:obj:`HorizontalBoxes`, xyxy in
    pixels of ``img``), ``gt_bboxes_labels``, ``gt_ignore_flags``.
    Modified keys: ``img`` and those three (``k`` boxes become ``k + p``;
    the first ``k`` are unchanged). Instance masks are not supported.

    Args:
        max_area (float): Priors with area below this (pixels^2) are
            sources. Defaults to ``32 * 32`` (COCO's "small").
        max_pastes (int): Pastes per image at most. Defaults to 5 (our
            default).
        prob (float): Probability to paste at all. Defaults to 0.5 (our
            default).
        iou_thr (float): A paste's largest IoU with the current boxes must
            be below this. Defaults to 0.3.
        max_tries (int): Locations tried per paste. Defaults to 10.
    """

    def __init__(self,
                 max_area: float = 32 * 32,
                 max_pastes: int = 5,
                 prob: float = 0.5,
                 iou_thr: float = 0.3,
                 max_tries: int = 10) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if max_pastes < 0 or max_tries < 1:
            raise ValueError('max_pastes must be >= 0 and max_tries >= 1, '
                             f'got {max_pastes} and {max_tries}')
        self.max_area = float(max_area)
        self.max_pastes = int(max_pastes)
        self.prob = float(prob)
        self.iou_thr = float(iou_thr)
        self.max_tries = int(max_tries)

    def transform(self, results: dict) -> dict:
        """Paste small priors; see the class docstring.

        Args:
            results (dict): The results after the geometric transforms.

        Returns:
            dict: ``results``, with pasted pixels and appended boxes.
        """
        if 'gt_masks' in results:
            raise ValueError('CopyPasteSmallPriors pastes boxes only and '
                             'cannot update gt_masks')
        if np.random.rand() >= self.prob:
            return results
        gt_bboxes = results['gt_bboxes']
        img = results['img']
        height, width = img.shape[:2]
        boxes = gt_bboxes.tensor.cpu().numpy().astype(np.float64)
        # sources are taken inside the image (the boxes are left unclipped)
        clipped = boxes.copy()
        clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
        clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
        areas = (clipped[:, 2] - clipped[:, 0]) * (
            clipped[:, 3] - clipped[:, 1])
        sources = np.flatnonzero((areas > 0) & (areas < self.max_area))
        if len(sources) == 0:
            return results
        original = img.copy()
        current = boxes
        pasted = []  # source indices
        for _ in range(self.max_pastes):
            src = int(sources[np.random.randint(len(sources))])
            x1, y1, x2, y2 = clipped[src]
            px1, py1 = math.floor(x1), math.floor(y1)
            px2, py2 = math.ceil(x2), math.ceil(y2)
            pw, ph = px2 - px1, py2 - py1
            for _ in range(self.max_tries):
                nx = np.random.randint(0, width - pw + 1)
                ny = np.random.randint(0, height - ph + 1)
                shift = np.array([nx - px1, ny - py1] * 2, dtype=np.float64)
                box = clipped[src] + shift
                iou = bbox_overlaps(
                    torch.from_numpy(box[None]), torch.from_numpy(current))
                if len(current) == 0 or iou.max() < self.iou_thr:
                    img[ny:ny + ph, nx:nx + pw] = original[py1:py2, px1:px2]
                    current = np.concatenate([current, box[None]])
                    pasted.append(src)
                    break
        if not pasted:
            return results
        new = gt_bboxes.tensor.new_tensor(current[len(boxes):])
        results['gt_bboxes'] = type(gt_bboxes).cat(
            [gt_bboxes, type(gt_bboxes)(new)])
        for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
            if key in results:
                results[key] = np.concatenate(
                    [results[key], results[key][pasted]])
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_area={self.max_area}, '
                f'max_pastes={self.max_pastes}, prob={self.prob}, '
                f'iou_thr={self.iou_thr}, max_tries={self.max_tries})')
