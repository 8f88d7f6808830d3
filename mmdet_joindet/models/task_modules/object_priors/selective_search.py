# Copyright (c) mmdet_joindet contributors. All rights reserved.
import ctypes
import sys
from typing import List, Optional

import cv2
import numpy as np
import torch
from mmdet.registry import TASK_UTILS
from mmdet.utils import InstanceList

from .base import BaseObjectPriorGenerator, check_images

_MODES = ('fast', 'quality')


def _check_ximgproc() -> None:
    if not hasattr(cv2, 'ximgproc'):
        raise ImportError(
            'SelectiveSearchPriorGenerator needs OpenCV\'s contrib modules '
            '(cv2.ximgproc), which this cv2 lacks. opencv-python and the '
            'contrib wheel both install cv2/: install '
            'opencv-contrib-python-headless after opencv-python (pip install '
            'opencv-contrib-python-headless) and check that '
            '`python -c "import cv2; cv2.ximgproc"` works.')


@TASK_UTILS.register_module()
class SelectiveSearchPriorGenerator(BaseObjectPriorGenerator):
    """DETReg's selective search boxes as object priors.

    DETReg (Bar et al., CVPR 2022) takes the first 30 boxes of OpenCV's
    selective search (Uijlings et al., 2013; ``cv2.ximgproc.segmentation``,
    fast mode) run on the image resized to 128 x 128, scaled back to the
    image's size. Per image this resizes the image to ``resize x resize``
    (bilinear, aspect ratio not kept), runs
    ``createSelectiveSearchSegmentation`` with
    ``switchToSelectiveSearchFast()`` (``mode='fast'``) or
    ``switchToSelectiveSearchQuality()`` (``mode='quality'``), keeps the
    first ``max_priors`` rectangles ``(x, y, w, h)`` in the order OpenCV
    returns them, scales them back to the original ``W x H``, turns them to
    ``(x1, y1, x2, y2)`` and clips them to the image. OpenCV gives no
    score: every box scores 1.0, so the kept boxes come sorted by area,
    largest first (:meth:`sort_and_cap`).

    OpenCV orders the regions by ``rand() * merge level`` with the C
    library's ``rand()``, so which boxes come first changes from call to
    call (as in DETReg, which recomputes them every epoch). With ``seed``,
    libc's ``srand(seed)`` is called before each image, so an image always
    gives the same boxes; this resets the process-wide ``rand()`` stream
    (nothing else in the mm* stack draws from it) and needs a POSIX libc.

    OpenCV's thread count is left alone: selective search runs on one core
    whatever ``cv2.setNumThreads`` says (measured here: the same ~60 ms per
    128 x 128 image, fast mode, with 1 or 2 threads; ~220 ms in quality
    mode). mmengine's ``env_cfg.opencv_num_threads`` sets it for a run.

    Args:
        max_priors (int, optional): Boxes kept per image. Defaults to 30
            (DETReg). None keeps every box.
        resize (int, optional): Side of the square image selective search
            runs on. Defaults to 128 (DETReg). None runs on the full image
            (about a second for a 500 x 333 image).
        mode (str): ``'fast'`` (DETReg) or ``'quality'``. Defaults to
            ``'fast'``.
        seed (int, optional): Seed of libc's ``rand()`` before each image,
            for reproducible boxes. Defaults to None (OpenCV's behaviour).

    ``generate(images)`` takes a list of numpy uint8 images ``[H, W, 3]``
    (BGR, mmcv's convention) or ``[H, W]`` (grayscale, converted to BGR)
    and returns per image ``bboxes`` float32 ``[K, 4]`` ``(x1, y1, x2, y2)``
    in that image's pixels (``0 <= x1 < x2 <= W``, ``0 <= y1 < y2 <= H``)
    and ``scores`` float32 ``[K]`` (all 1.0), ``K <= max_priors``, on the
    CPU.
    """

    input_type = 'image'

    def __init__(self,
                 max_priors: Optional[int] = 30,
                 resize: Optional[int] = 128,
                 mode: str = 'fast',
                 seed: Optional[int] = None) -> None:
        super().__init__(max_priors=max_priors)
        _check_ximgproc()
        if resize is not None and (isinstance(resize, bool) or
                                   not isinstance(resize, int) or resize < 1):
            raise ValueError(f'resize must be an int >= 1 or None, got '
                             f'{resize!r}')
        if mode not in _MODES:
            raise ValueError(f'mode must be one of {_MODES}, got {mode!r}')
        self.resize = resize
        self.mode = mode
        self.seed = seed
        self._srand = None
        if seed is not None:
            if sys.platform == 'win32':
                raise NotImplementedError(
                    'seed needs a POSIX C library (libc srand)')
            self._srand = ctypes.CDLL(None).srand
            self._srand.argtypes = [ctypes.c_uint]
            self._srand.restype = None

    def generate(self,
                 images: List[np.ndarray],
                 batch_img_metas: Optional[List[dict]] = None) -> InstanceList:
        """Selective search boxes for each image; see the class docstring.

        Args:
            images (list[np.ndarray]): uint8 ``[H, W, 3]`` (BGR) or
                ``[H, W]`` images.
            batch_img_metas (list[dict], optional): Not used.

        Returns:
            list[:obj:`InstanceData`]: ``bboxes`` float32 ``[K, 4]`` and
            ``scores`` float32 ``[K]`` per image.
        """
        results = []
        for img in check_images(images, batch_img_metas):
            boxes = torch.from_numpy(self._boxes(img))
            results.append(
                self.sort_and_cap(boxes, boxes.new_ones(len(boxes))))
        return results

    def _boxes(self, img: np.ndarray) -> np.ndarray:
        """The first ``max_priors`` boxes, float32 ``[K, 4]`` xyxy."""
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        h, w = img.shape[:2]
        if self.resize is not None:
            img = cv2.resize(img, (self.resize, self.resize))
        img = np.ascontiguousarray(img)
        ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
        ss.setBaseImage(img)
        if self.mode == 'fast':
            ss.switchToSelectiveSearchFast()
        else:
            ss.switchToSelectiveSearchQuality()
        if self._srand is not None:
            self._srand(self.seed)
        rects = np.asarray(ss.process(), dtype=np.float64).reshape(-1, 4)
        rects = rects[:self.max_priors]
        scale = np.array([w / img.shape[1], h / img.shape[0]])
        xy1 = rects[:, :2] * scale
        xy2 = (rects[:, :2] + rects[:, 2:]) * scale
        boxes = np.concatenate([xy1, xy2], 1).clip(0, [w, h, w, h])
        return boxes.astype(np.float32)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_priors={self.max_priors}, '
                f'resize={self.resize}, mode={self.mode!r}, '
                f'seed={self.seed})')
