# Copyright (c) mmdet_joindet contributors. All rights reserved.
import math
from typing import Sequence, Tuple

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


def random_resized_crop(
        img: np.ndarray, size: int, scale: Tuple[float, float],
        ratio: Tuple[float, float]) -> Tuple[np.ndarray, Tuple[int, ...]]:
    """A random crop of random area and aspect ratio, resized to a square.

    As torchvision's ``RandomResizedCrop``: up to 10 tries to draw an area
    fraction in ``scale`` and a log-uniform aspect ratio (w/h) in ``ratio``
    that fit; else the largest centred crop with a ratio in range.

    Args:
        img (np.ndarray): ``[H, W, 3]``.
        size (int): Output side.
        scale (tuple[float, float]): Area fraction range.
        ratio (tuple[float, float]): Aspect ratio range.

    Returns:
        tuple: The crop, ``[size, size, 3]`` in the input's dtype, and its
        box ``(x1, y1, x2, y2)`` in input pixels (``x2 - x1`` columns).
    """
    h, w = img.shape[:2]
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        area = h * w * np.random.uniform(*scale)
        aspect = math.exp(np.random.uniform(*log_ratio))
        cw = int(round(math.sqrt(area * aspect)))
        ch = int(round(math.sqrt(area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            y = np.random.randint(0, h - ch + 1)
            x = np.random.randint(0, w - cw + 1)
            break
    else:
        aspect = min(max(w / h, ratio[0]), ratio[1])
        cw, ch = (w, int(round(w / aspect))) if w / h < aspect \
            else (int(round(h * aspect)), h)
        cw, ch = min(max(cw, 1), w), min(max(ch, 1), h)
        y, x = (h - ch) // 2, (w - cw) // 2
    out = cv2.resize(
        img[y:y + ch, x:x + cw], (size, size), interpolation=cv2.INTER_LINEAR)
    return out, (x, y, x + cw, y + ch)


def color_jitter(img: np.ndarray, brightness: float, contrast: float,
                 saturation: float, hue: float) -> np.ndarray:
    """Random brightness, contrast, saturation and hue, in that order.

    Factors are drawn as torchvision's ``ColorJitter`` draws them
    (``U(1 - b, 1 + b)``, hue shift ``U(-hue, hue)`` of a turn); values are
    clipped to ``[0, 255]`` after each step.

    Args:
        img (np.ndarray): ``[H, W, 3]`` float32 BGR in ``[0, 255]``.

    Returns:
        np.ndarray: ``[H, W, 3]`` float32 BGR in ``[0, 255]``.
    """
    img = np.clip(img * np.random.uniform(1 - brightness, 1 + brightness), 0,
                  255)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None]
    c = np.random.uniform(1 - contrast, 1 + contrast)
    img = np.clip((img - gray.mean()) * c + gray.mean(), 0, 255)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None]
    s = np.random.uniform(1 - saturation, 1 + saturation)
    img = np.clip((img - gray) * s + gray, 0, 255)
    hsv = cv2.cvtColor(img / 255, cv2.COLOR_BGR2HSV)  # float: H in degrees
    hsv[..., 0] = (hsv[..., 0] + 360 * np.random.uniform(-hue, hue)) % 360
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR) * 255, 0, 255)


@TRANSFORMS.register_module()
class TwoViews(BaseTransform):
    """Two random augmented views of one image, for two-view SSL.

    BYOL's augmentations (Grill et al. 2020, Table 6), with numpy/OpenCV on
    the loaded image, once per view: random resized crop to ``size``,
    horizontal flip (p 0.5), colour jitter (p ``jitter_prob``), grayscale
    (p ``gray_prob``), Gaussian blur with sigma ``U(0.1, 2.0)`` (p
    ``blur_probs[i]`` for view ``i``), solarisation (p
    ``solarize_probs[i]``). The two views' blur and solarisation
    probabilities differ, as in the paper.

    This ends the pipeline: the result is ``dict(inputs=<[2, 3, size,
    size] uint8 tensor>, data_samples=<[2, 5] float32 tensor>)``. The
    views are in the image's channel order (BGR from ``LoadImageSafely``);
    :class:`MultiViewDataPreprocessor` stacks them to ``[B, 2, 3, size,
    size]``, converts to RGB and normalises. Row ``i`` of ``data_samples``
    is view ``i``'s geometry ``(x1, y1, x2, y2, flipped)``: its crop box in
    input pixels and 1.0 if it was flipped horizontally (dense objectives
    such as :class:`DenseSwAV` match locations across the views with it).

    Required keys: ``img`` (``[H, W, 3]`` or ``[H, W]``, uint8 or float in
    ``[0, 255]``).

    Args:
        size (int): Side of each view. Defaults to 96.
        scale (tuple[float, float]): Crop area fraction range. Defaults to
            ``(0.08, 1.0)``.
        ratio (tuple[float, float]): Crop aspect ratio range. Defaults to
            ``(3 / 4, 4 / 3)``.
        jitter (tuple[float]): Brightness, contrast, saturation, hue
            strengths. Defaults to ``(0.4, 0.4, 0.2, 0.1)``.
        jitter_prob (float): Defaults to 0.8.
        gray_prob (float): Defaults to 0.2.
        blur_probs (tuple[float, float]): Per view. Defaults to
            ``(1.0, 0.1)``.
        solarize_probs (tuple[float, float]): Per view. Defaults to
            ``(0.0, 0.2)``.
    """

    def __init__(
        self,
        size: int = 96,
        scale: Tuple[float, float] = (0.08, 1.0),
        ratio: Tuple[float, float] = (3 / 4, 4 / 3),
        jitter: Sequence[float] = (0.4, 0.4, 0.2, 0.1),
        jitter_prob: float = 0.8,
        gray_prob: float = 0.2,
        blur_probs: Sequence[float] = (1.0, 0.1),
        solarize_probs: Sequence[float] = (0.0, 0.2)
    ) -> None:
        if len(blur_probs) != 2 or len(solarize_probs) != 2:
            raise ValueError('blur_probs and solarize_probs need one '
                             'probability per view (two)')
        if len(jitter) != 4:
            raise ValueError('jitter is (brightness, contrast, saturation, '
                             f'hue), got {jitter}')
        self.size = size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.jitter = tuple(jitter)
        self.jitter_prob = jitter_prob
        self.gray_prob = gray_prob
        self.blur_probs = tuple(blur_probs)
        self.solarize_probs = tuple(solarize_probs)

    def view(self, img: np.ndarray,
             index: int) -> Tuple[np.ndarray, Tuple[float, ...]]:
        """One augmented view (view ``index``).

        Returns:
            tuple: ``[size, size, 3]`` uint8 and its geometry ``(x1, y1,
            x2, y2, flipped)``.
        """
        out, box = random_resized_crop(img, self.size, self.scale, self.ratio)
        out = out.astype(np.float32)
        flipped = np.random.rand() < 0.5
        if flipped:
            out = out[:, ::-1]
        if np.random.rand() < self.jitter_prob:
            out = color_jitter(np.ascontiguousarray(out), *self.jitter)
        if np.random.rand() < self.gray_prob:
            gray = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2GRAY)
            out = np.repeat(gray[..., None], 3, axis=2)
        if np.random.rand() < self.blur_probs[index]:
            out = cv2.GaussianBlur(
                np.ascontiguousarray(out), (0, 0), np.random.uniform(0.1, 2.0))
        if np.random.rand() < self.solarize_probs[index]:
            out = np.where(out < 128, out, 255 - out)
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out, (*box, float(flipped))

    def transform(self, results: dict) -> dict:
        """Two views of ``results['img']``.

        Returns:
            dict: ``inputs``: ``[2, 3, size, size]`` uint8 tensor;
            ``data_samples``: ``[2, 5]`` float32 geometry of the views.
        """
        img = results['img']
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        views, geometry = zip(*(self.view(img, i) for i in range(2)))
        inputs = torch.from_numpy(np.stack(views)).permute(0, 3, 1,
                                                           2).contiguous()
        return dict(
            inputs=inputs,
            data_samples=torch.tensor(geometry, dtype=torch.float32))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, scale='
                f'{self.scale}, ratio={self.ratio}, jitter={self.jitter}, '
                f'jitter_prob={self.jitter_prob}, gray_prob='
                f'{self.gray_prob}, blur_probs={self.blur_probs}, '
                f'solarize_probs={self.solarize_probs})')
