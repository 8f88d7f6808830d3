# Copyright (c) mmdet_joindet contributors. All rights reserved.
import warnings
from typing import FrozenSet, Optional, Set

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS
from mmengine import fileio

_JPEG_SOI = b'\xff\xd8'
_JPEG_EOI = b'\xff\xd9'
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_IEND = b'IEND\xaeB`\x82'  # the IEND chunk type and its (fixed) CRC
# JPEG markers without a length field: TEM, RST0-7 (and 0x00, a stuffed
# 0xFF byte inside entropy-coded data).
_JPEG_NO_LENGTH = {0x00, 0x01, *range(0xD0, 0xD8)}


class ImageSkippedWarning(UserWarning):
    """An image file that :class:`LoadImageSafely` skipped."""


def _jpeg_reaches_eoi(data: bytes) -> bool:
    """Whether a JPEG's marker structure reaches its EOI marker.

    Walks the segments from SOI (skipping each segment by its length, so an
    EOI inside an EXIF thumbnail does not count) and scans entropy-coded
    data for the next marker, up to EOI. Bytes after EOI (padding, the
    video of a "motion photo") are allowed.
    """
    n, pos = len(data), 2
    while pos < n:
        if data[pos] != 0xFF:  # entropy-coded data: find the next marker
            pos = data.find(b'\xff', pos)
            if pos < 0:
                return False
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return False
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return True
        if marker not in _JPEG_NO_LENGTH:
            if pos + 2 > n:
                return False
            pos += int.from_bytes(data[pos:pos + 2], 'big')
    return False


def incomplete_image_reason(data: bytes) -> Optional[str]:
    """Why the bytes of an image file are not a complete image, or None.

    Decoders do not always fail on a cut file: OpenCV 4 builds and Pillow
    with ``ImageFile.LOAD_TRUNCATED_IMAGES`` (which some code bases set
    globally) return a truncated JPEG with its missing rows grey, silently
    (the OpenCV 5 build installed here returns None). So this checks the
    end of the formats that have one: JPEG must reach its EOI marker
    (``FFD9``), PNG must hold its ``IEND`` chunk, WebP and BMP must be as
    long as their headers say. Other formats are left to the decoder.

    Args:
        data (bytes): The whole file.

    Returns:
        str | None: A short reason (``'empty file'``, ``'truncated JPEG
        (no EOI marker)'``, ...) or None when nothing is wrong.
    """
    if len(data) == 0:
        return 'empty file'
    if data.startswith(_JPEG_SOI):
        # fast path: the EOI is the last marker (trailing zeros allowed)
        if data[-1024:].rstrip(b'\x00\r\n').endswith(_JPEG_EOI) \
                or _jpeg_reaches_eoi(data):
            return None
        return 'truncated JPEG (no EOI marker FFD9)'
    if data.startswith(_PNG_SIGNATURE):
        if data.rfind(_PNG_IEND) < 0:
            return 'truncated PNG (no IEND chunk)'
        return None
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        size = int.from_bytes(data[4:8], 'little') + 8
        if len(data) < size:
            return f'truncated WebP ({len(data)} of {size} bytes)'
        return None
    if data[:2] == b'BM' and len(data) >= 6:
        size = int.from_bytes(data[2:6], 'little')  # 0 when not filled in
        if len(data) < size:
            return f'truncated BMP ({len(data)} of {size} bytes)'
    return None


@TRANSFORMS.register_module()
class LoadImageSafely(LoadImageFromFile):
    """Load an image like ``LoadImageFromFile``; skip broken files.

    Large unlabeled sets (ImageNet, web crawls) hold a few missing,
    truncated or undecodable files. Where mmcv's ``LoadImageFromFile``
    raises (or, with some decoders, returns a truncated JPEG partly grey),
    this returns None, which makes :class:`SelfSupervisedDataset` (and
    mmengine's ``BaseDataset`` in training mode) fetch another image. A
    file is skipped when it cannot be read, is empty or truncated (see
    :func:`incomplete_image_reason`), cannot be decoded, or decodes to a
    size other than the ``height``/``width`` in ``results`` (when both are
    there; a transposed size, an EXIF rotation, is accepted).

    Each skipped path is warned about once per process
    (:class:`ImageSkippedWarning`, naming the file and the reason) and
    recorded in a per-process set, :meth:`skipped`, so a hook can report
    how many images were skipped. Dataloader workers are processes of their
    own: each has its own set.

    Required keys: ``img_path`` (``height``, ``width`` optional).
    Added keys: ``img`` (``[H, W, 3]`` BGR or ``[H, W]``, uint8 or float32),
    ``img_shape``, ``ori_shape`` (both ``(H, W)``).

    Args:
        to_float32 (bool): Convert the image to float32. Defaults to False.
        color_type (str): The ``flag`` of :func:`mmcv.imfrombytes`.
            Defaults to ``'color'``.
        imdecode_backend (str): The ``backend`` of :func:`mmcv.imfrombytes`.
            Defaults to ``'cv2'``.
        backend_args (dict, optional): mmengine file backend arguments.
            Defaults to None.
    """

    _skipped: Set[str] = set()  # per process (class attribute)

    def __init__(self,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2',
                 *,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(
            to_float32=to_float32,
            color_type=color_type,
            imdecode_backend=imdecode_backend,
            ignore_empty=True,
            backend_args=backend_args)

    @classmethod
    def skipped(cls) -> FrozenSet[str]:
        """The paths this process skipped so far."""
        return frozenset(LoadImageSafely._skipped)

    @classmethod
    def is_skipped(cls, path: str) -> bool:
        """Whether this process skipped ``path``."""
        return path in LoadImageSafely._skipped

    @staticmethod
    def _skip(path: str, reason: str) -> None:
        if path not in LoadImageSafely._skipped:
            LoadImageSafely._skipped.add(path)
            warnings.warn(
                f'skipped image {path}: {reason}',
                ImageSkippedWarning,
                stacklevel=2)

    def _decode(self, results: dict) -> np.ndarray:
        """The image of ``results['img_path']``; ValueError if unusable."""
        path = results['img_path']
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except Exception as e:  # missing, unreadable, a folder, ...
            raise ValueError(
                f'cannot read the file ({type(e).__name__}: {e})') from e
        reason = incomplete_image_reason(data)
        if reason is not None:
            raise ValueError(reason)
        try:
            img = mmcv.imfrombytes(
                data, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as e:
            raise ValueError(
                f'cannot decode it ({type(e).__name__}: {e})') from e
        if img is None or img.size == 0:
            raise ValueError(f'cannot decode it with {self.imdecode_backend} '
                             '(not an image, or an unsupported format)')
        height, width = results.get('height'), results.get('width')
        if height is not None and width is not None \
                and img.shape[:2] not in ((height, width), (width, height)):
            raise ValueError(
                f'it decodes to {img.shape[0]}x{img.shape[1]} (HxW) but its '
                f'data_info says {height}x{width}')
        return img

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``, or return None to skip it.

        Args:
            results (dict): The data_info of one image.

        Returns:
            dict | None: ``results`` with the image, or None.
        """
        try:
            img = self._decode(results)
        except ValueError as e:
            self._skip(results['img_path'], str(e))
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(to_float32={self.to_float32}, '
                f"color_type='{self.color_type}', "
                f"imdecode_backend='{self.imdecode_backend}', "
                f'backend_args={self.backend_args})')
