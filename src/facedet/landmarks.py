"""The five landmarks as arrays, and drawn (the one place that knows their colours) on every picture facedet writes."""

from __future__ import annotations

import cv2
import numpy as np

from facedet import coco

# RGB per point of facedet.coco.KEYPOINT_NAMES: the image-left eye and mouth corner red, the nose
# yellow, the image-right eye and mouth corner blue (so a swapped pair shows at a glance).
COLOURS_RGB = ((230, 40, 40), (40, 90, 240), (240, 220, 0), (230, 40, 40), (40, 90, 240))


def draw_landmarks(
    picture: np.ndarray,
    points,
    radius: int = 2,
    bgr: bool = False,
    scale: tuple[float, float] = (1.0, 1.0),
    offset: tuple[float, float] = (0.0, 0.0),
) -> None:
    """Draw five points, ``(x, y)`` or ``(x, y, v)`` (v 0: not labelled, skipped), in place on an RGB
    (or ``bgr``) uint8 picture, each at ``offset + scale * (x, y)``."""
    for point, colour in zip(points, COLOURS_RGB):
        if len(point) > 2 and not point[2]:
            continue
        x, y = offset[0] + scale[0] * float(point[0]), offset[1] + scale[1] * float(point[1])
        cv2.circle(picture, (int(round(x)), int(round(y))), radius, colour[::-1] if bgr else colour, -1, cv2.LINE_AA)


def landmark_array(image: coco.Image) -> np.ndarray:
    """[N, 5, 3] (x, y, v) in pixels of the image's faces; zeros (v 0) for a face without landmarks."""
    rows = [
        points if points is not None else ((0.0, 0.0, 0),) * coco.NUM_KEYPOINTS for points in image.face_landmarks()
    ]
    return np.asarray(rows, dtype=np.float64).reshape(-1, coco.NUM_KEYPOINTS, 3)
