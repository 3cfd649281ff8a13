"""Axis-aligned boxes (x1, y1, x2, y2) in pixels: overlap, clipping and the box of a rotated ellipse.

The one home of these primitives: evaluation, video smoothing, label import, the sample and the
robustness report all use them.
"""

from __future__ import annotations

import math

import numpy as np

Box = tuple[float, float, float, float]


def _as_array(boxes: np.ndarray) -> np.ndarray:
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` [N, 4] with every box in ``b`` [M, 4] -> [N, M]; 0 where the union is empty."""
    a, b = _as_array(a), _as_array(b)
    inter = _intersection(a, b)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def intersection_over_first(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of every box in ``a`` [N, 4] with every box in ``b`` [M, 4] over the area of the
    box in ``a`` -> [N, M]; 0 for a zero-area box in ``a``."""
    a, b = _as_array(a), _as_array(b)
    area_a = _area(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area_a[:, None] > 0, _intersection(a, b) / np.where(area_a > 0, area_a, 1.0)[:, None], 0.0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    return iw * ih


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """``boxes`` [N, 4] clipped to the frame [0, width] x [0, height] (they may end up empty)."""
    return np.clip(boxes, 0, [width, height, width, height])


def clip_box(box: Box, width: float, height: float) -> Box:
    """One box clipped to the frame [0, width] x [0, height] (it may end up empty: see `has_area`)."""
    x1, y1, x2, y2 = box
    w, h = float(width), float(height)
    return min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h)


def has_area(box: Box) -> bool:
    return box[2] > box[0] and box[3] > box[1]


def ellipse_box(cx: float, cy: float, half_width: float, half_height: float, angle: float) -> Box:
    """The axis-aligned box of an ellipse centred at (cx, cy) with semi-axes ``half_width`` (along x
    before rotation) and ``half_height``, rotated by ``angle`` radians.

    Half-extents: sqrt((a cos t)^2 + (b sin t)^2) in x, sqrt((a sin t)^2 + (b cos t)^2) in y.
    """
    c, s = math.cos(angle), math.sin(angle)
    hw, hh = math.hypot(half_width * c, half_height * s), math.hypot(half_width * s, half_height * c)
    return cx - hw, cy - hh, cx + hw, cy + hh
