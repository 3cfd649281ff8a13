"""Human landmarks shipped with corpus pictures: iBUG 68-point ``.pts`` files -> facedet's five points.

A ``.pts`` file (version 1; menpo's, the 300-W format) lists ``x y`` per point between ``{`` and ``}``,
1-based as menpo reads them (a pixel's centre is at its index + 1), so a point's continuous coordinate
(facedet's, a pixel's centre at index + 0.5) is the written value - 0.5. The five points of
:data:`facedet.coco.KEYPOINT_NAMES` from the 68 (0-based indices, as InsightFace and most 5-point
converters take them): the mean of 36-41 (the image-left eye's contour), of 42-47 (the other eye),
30 (the nose tip), 48 and 54 (the mouth corners, image-left first).
"""

from __future__ import annotations

import numpy as np

IBUG_FIVE = ((36, 42), (42, 48), (30, 31), (48, 49), (54, 55))  # index ranges averaged per point


def read_pts(text: str) -> np.ndarray:
    """[N, 2] points (x, y) in continuous pixel coordinates; ValueError for a file that is not PTS."""
    lines = [line.strip() for line in text.splitlines()]
    try:
        start, end = lines.index("{"), lines.index("}")
        points = np.array([[float(v) for v in line.split()] for line in lines[start + 1 : end] if line], np.float64)
    except ValueError:
        raise ValueError("not a PTS file (no '{' ... '}' block of 'x y' numbers)") from None
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError("not a PTS file (a point is not 'x y')")
    return points - 0.5


def five_from_68(points: np.ndarray) -> list[tuple[float, float]]:
    """facedet's five points from iBUG's 68; ValueError for another number of points."""
    if len(points) != 68:
        raise ValueError(f"{len(points)} points: expected iBUG's 68")
    return [tuple(float(v) for v in points[a:b].mean(axis=0).round(2)) for a, b in IBUG_FIVE]
