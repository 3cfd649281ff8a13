"""Drawn faces whose five landmarks are known by construction (tests only): a skin-coloured oval with two
dark eyes, a nose tip and a mouth line, at random places, sizes and small tilts on a noisy background.

The points are exactly where the features are drawn, so a model trained on them can be measured honestly;
they are cartoons, not people (the embedded sample cannot say where its LFW faces' eyes are).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from facedet import coco
from facedet.images import write_image

# Feature positions in a face of width 1 centred on 0 (y down): image-left eye, image-right eye, nose tip,
# image-left and image-right mouth corners.
LAYOUT = np.array([[-0.2, -0.12], [0.2, -0.12], [0.0, 0.1], [-0.16, 0.3], [0.16, 0.3]])


def draw_face(canvas: np.ndarray, cx: float, cy: float, width: float, angle: float, rng) -> tuple:
    """Draw one face; returns (box, five (x, y, 2) points) in pixels."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    points = [(cx + width * (c * x - s * y), cy + width * (s * x + c * y)) for x, y in LAYOUT]
    skin = tuple(int(v) for v in rng.integers(150, 230, 3))
    axes = (int(width / 2), int(width * 0.65))
    cv2.ellipse(canvas, (int(cx), int(cy)), axes, angle, 0, 360, skin, -1, cv2.LINE_AA)
    dark = (30, 25, 20)
    for x, y in points[:2]:
        cv2.circle(canvas, (int(round(x)), int(round(y))), max(1, int(width * 0.07)), dark, -1, cv2.LINE_AA)
    nose = points[2]
    cv2.circle(canvas, (int(round(nose[0])), int(round(nose[1]))), max(1, int(width * 0.05)), (120, 60, 50), -1)
    left, right = points[3], points[4]
    cv2.line(
        canvas,
        (int(round(left[0])), int(round(left[1]))),
        (int(round(right[0])), int(round(right[1]))),
        (150, 30, 40),
        max(1, int(width * 0.04)),
        cv2.LINE_AA,
    )
    # The box of the tilted ellipse (as facedet's sample labels faces).
    half_w = math.hypot(axes[0] * c, axes[1] * s)
    half_h = math.hypot(axes[0] * s, axes[1] * c)
    box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    return box, tuple((float(x), float(y), 2) for x, y in points)


def make_images(folder: Path, count: int, seed: int, size: int = 128, unlabelled_share: float = 0.2) -> list:
    """``count`` pictures with one or two drawn faces each under ``folder``; their coco.Images (a share
    of the faces without landmarks, as in real data)."""
    rng = np.random.default_rng(seed)
    Path(folder).mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(count):
        canvas = rng.integers(0, 120, (size, size, 3)).astype(np.uint8)
        canvas = cv2.GaussianBlur(canvas, (5, 5), 0)
        boxes, marks = [], []
        for k in range(int(rng.integers(1, 3))):
            width = float(rng.uniform(0.25, 0.4) * size)
            cx = float(rng.uniform(width * 0.6, size - width * 0.6))
            cy = (k + 0.5) * size / 2  # one face per half, so two never overlap
            cy = float(np.clip(cy + rng.uniform(-0.1, 0.1) * size, width * 0.7, size - width * 0.7))
            if any(abs(cy - (b[1] + b[3]) / 2) < width for b in boxes):
                continue
            box, points = draw_face(canvas, cx, cy, width, float(rng.uniform(-15, 15)), rng)
            boxes.append(box)
            marks.append(None if rng.random() < unlabelled_share else points)
        name = f"drawn_{seed}_{i:03d}.png"
        write_image(folder / name, canvas)
        images.append(coco.Image(name, size, size, boxes, [], marks))
    return images
