# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Figures of JoinDet's priors (paper Fig. 6) and of detections.

Panels are RGB uint8 images; boxes are drawn with mmdet's
:class:`DetLocalVisualizer` (matplotlib, no display needed) and panels are
laid out in a grid with a title band above each, written as one PNG.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmdet_joindet.utils.atomic import write_bytes_atomic

__all__ = [
    'draw_boxes', 'eigen_map_panel', 'panel_grid', 'save_png', 'read_rgb',
    'ROUND_COLOUR', 'GT_COLOUR'
]

ROUND_COLOUR = (255, 140, 0)  # priors
GT_COLOUR = (40, 200, 40)  # ground truth
_TITLE_H = 18


def draw_boxes(image: np.ndarray,
               boxes: np.ndarray,
               colour: Tuple[int, int, int] = ROUND_COLOUR,
               line_width: float = 1.5) -> np.ndarray:
    """``image`` (RGB uint8 ``[H, W, 3]``) with ``boxes`` (``[K, 4]`` xyxy,
    its pixels) drawn; a new array."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        return image.copy()
    # imported here: matplotlib costs 1.6 s of every tool's start otherwise
    from mmdet.visualization import DetLocalVisualizer
    vis = DetLocalVisualizer.get_instance(
        'mmdet_joindet_figure', vis_backends=None, save_dir=None)
    vis.set_image(image)
    vis.draw_bboxes(boxes, edge_colors=[colour], line_widths=line_width)
    return vis.get_image()


def eigen_map_panel(image: np.ndarray, eigen_map: np.ndarray,
                    fg_mask: np.ndarray, stride: Tuple[float, float],
                    img_shape: Tuple[int, int]) -> np.ndarray:
    """The eigen attention map over the image (Fig. 6's second column).

    Args:
        image (np.ndarray): RGB uint8 ``[H, W, 3]``, the original image.
        eigen_map (np.ndarray): ``[h, w]`` map over the valid cells of the
            network input.
        fg_mask (np.ndarray): Bool ``[h, w]``: ``M > mean(M)``; its
            outline is drawn in white.
        stride (tuple[float, float]): ``(stride_w, stride_h)`` of a cell
            in network-input pixels.
        img_shape (tuple[int, int]): ``(h, w)`` of the network input.

    Returns:
        np.ndarray: RGB uint8 ``[H, W, 3]``: the map (min-max scaled,
        a colour map) blended over the image.
    """
    H, W = image.shape[:2]
    m = np.asarray(eigen_map, np.float32)
    span = float(m.max() - m.min()) if m.size else 0.0
    m = (m - m.min()) / span if span > 0 else np.zeros_like(m)

    def to_image(cells: np.ndarray) -> np.ndarray:
        h, w = cells.shape
        up = cv2.resize(
            cells,
            (max(1, round(w * stride[0])), max(1, round(h * stride[1]))),
            interpolation=cv2.INTER_NEAREST)[:img_shape[0], :img_shape[1]]
        return cv2.resize(up, (W, H), interpolation=cv2.INTER_NEAREST)

    heat = cv2.applyColorMap((to_image(m) * 255).astype(np.uint8),
                             cv2.COLORMAP_JET)[..., ::-1]
    out = (0.45 * image + 0.55 * heat).astype(np.uint8)
    mask = to_image(np.asarray(fg_mask, np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    return out


def _with_title(panel: np.ndarray, title: str, height: int) -> np.ndarray:
    """``panel`` scaled to ``height`` rows under a white title band."""
    h, w = panel.shape[:2]
    width = max(1, round(w * height / h))
    body = cv2.resize(panel, (width, height), interpolation=cv2.INTER_AREA)
    band = np.full((_TITLE_H, width, 3), 255, np.uint8)
    cv2.putText(band, title[:max(1, width // 7)], (2, _TITLE_H - 5),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, body], 0)


def panel_grid(rows: Sequence[Sequence[Tuple[str, np.ndarray]]],
               height: int = 192,
               gap: int = 4) -> np.ndarray:
    """Lay out titled panels: one row per image, panels left to right.

    Args:
        rows: Per row, ``(title, RGB uint8 [H, W, 3])`` panels.
        height (int): Rows of every panel's image part.
        gap (int): White pixels between panels.

    Returns:
        np.ndarray: The grid, RGB uint8.
    """
    if not rows or not all(rows):
        raise ValueError('panel_grid needs at least one panel per row')
    lines: List[np.ndarray] = []
    for row in rows:
        parts = []
        for title, panel in row:
            parts += [
                _with_title(panel, title, height),
                np.full((height + _TITLE_H, gap, 3), 255, np.uint8)
            ]
        lines.append(np.concatenate(parts[:-1], 1))
    width = max(line.shape[1] for line in lines)
    out = []
    for line in lines:
        pad = np.full((line.shape[0], width - line.shape[1], 3), 255, np.uint8)
        out += [
            np.concatenate([line, pad], 1),
            np.full((gap, width, 3), 255, np.uint8)
        ]
    return np.concatenate(out[:-1], 0)


def save_png(path: str, image: np.ndarray) -> str:
    """Write an RGB uint8 image as PNG, atomically; returns ``path``."""
    if not path.lower().endswith('.png'):
        raise ValueError(f'expected a .png path, got {path}')
    ok, data = cv2.imencode('.png', np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RuntimeError(f'could not encode {path}')
    write_bytes_atomic(path, data.tobytes())
    return osp.abspath(path)


def read_rgb(path: str) -> Optional[np.ndarray]:
    """An image file as RGB uint8, None when it cannot be read."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if img is None else img[..., ::-1].copy()
