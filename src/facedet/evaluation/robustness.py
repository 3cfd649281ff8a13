"""How the detector holds up under controlled, deterministic perturbations of the test split.

Each entry of `PERTURBATIONS` maps ``(rgb, boxes) -> (rgb, boxes)`` (HxWx3 uint8 RGB, boxes
[N, 4] as x1, y1, x2, y2 in pixels of that image):

- ``original``: unchanged.
- ``darker`` / ``brighter``: every channel value halved / its distance to white halved
  (v -> v / 2, v -> 255 - (255 - v) / 2), rounded.
- ``rotate_±15`` / ``rotate_±30``: the image rotated about its centre by that many degrees,
  positive counter-clockwise as seen on screen (OpenCV's convention), with ``cv2.warpAffine`` into
  the same frame size (corners cut off, black fill, bilinear). Box rule: faces are roughly
  elliptical, so a box is read as the ellipse inscribed in it; the new box is the axis-aligned
  bounding box of that ellipse rotated with the image: centre rotated with the image, half-width
  sqrt((w/2 cos θ)² + (h/2 sin θ)²), half-height sqrt((w/2 sin θ)² + (h/2 cos θ)²). (The box of the
  rotated corners would grow a square by cos θ + sin θ, 1.37 at 30°, mostly background; the
  ellipse's box keeps a square the same.) Box coordinates are continuous (pixel i spans [i, i+1)),
  so they rotate about (W/2, H/2), which is OpenCV's pixel-index centre ((W-1)/2, (H-1)/2).
  Boxes are then clipped to the frame; `PERTURBATIONS` drops boxes left thinner than 1 px,
  and [`robustness_report`][] turns a face with less than half of its box inside the frame into
  an ignore region (neither TP nor FP) rather than asking for a half face.
- ``blur``: Gaussian blur, sigma 0.5 % of the longer image side (at least 1 px), so the blur is
  the same relative to the face whatever the resolution the network resizes to.
- ``jpeg_q10``: JPEG encode at quality 10 and decode (OpenCV's libjpeg).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facedet.boxes import clip_boxes
from facedet.coco import Detection, Image
from facedet.evaluation.metrics import detection_metrics
from facedet.evaluation.plots import new_chart, save_chart

__all__ = ["PERTURBATIONS", "Perturbation", "plot_robustness", "robustness_report", "rotate_boxes"]

MIN_VISIBLE = 0.5  # a rotated face keeping less of its box inside the frame becomes an ignore region


def _as_boxes(boxes) -> np.ndarray:
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def rotate_boxes(boxes, width: int, height: int, degrees: float) -> np.ndarray:
    """Boxes [N, 4] after rotating a ``width`` x ``height`` image by ``degrees`` (counter-clockwise
    on screen) about its centre: bounding boxes of the rotated inscribed ellipses, not clipped."""
    boxes = _as_boxes(boxes)
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    cx, cy = width / 2, height / 2
    bx, by = (boxes[:, 0] + boxes[:, 2]) / 2 - cx, (boxes[:, 1] + boxes[:, 3]) / 2 - cy
    # OpenCV's rotation matrix for angle θ in image coordinates (y down): [[cos, sin], [-sin, cos]]
    nx, ny = cx + cos * bx + sin * by, cy - sin * bx + cos * by
    a, b = (boxes[:, 2] - boxes[:, 0]) / 2, (boxes[:, 3] - boxes[:, 1]) / 2
    half_w = np.sqrt((a * cos) ** 2 + (b * sin) ** 2)
    half_h = np.sqrt((a * sin) ** 2 + (b * cos) ** 2)
    return np.stack([nx - half_w, ny - half_h, nx + half_w, ny + half_h], axis=1)


def _rotate_image(rgb: np.ndarray, degrees: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, 1.0)
    return cv2.warpAffine(
        rgb, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )


def _darker(rgb: np.ndarray) -> np.ndarray:
    return np.round(rgb.astype(np.float32) / 2).astype(np.uint8)


def _brighter(rgb: np.ndarray) -> np.ndarray:
    return np.round(255 - (255 - rgb.astype(np.float32)) / 2).astype(np.uint8)


def _blur(rgb: np.ndarray) -> np.ndarray:
    sigma = max(1.0, 0.005 * max(rgb.shape[:2]))
    return cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def _jpeg(rgb: np.ndarray, quality: int = 10) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class Perturbation:
    """A deterministic perturbation: ``image(rgb)`` and ``boxes(boxes, width, height)`` (unclipped);
    calling it applies both and returns the boxes clipped to the frame, 1 px wide and high at least."""

    name: str
    image: Callable[[np.ndarray], np.ndarray]
    boxes: Callable[[np.ndarray, int, int], np.ndarray] = lambda boxes, width, height: _as_boxes(boxes)

    def __call__(self, rgb: np.ndarray, boxes) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.ascontiguousarray(rgb)
        height, width = rgb.shape[:2]
        out = clip_boxes(self.boxes(_as_boxes(boxes), width, height), width, height)
        keep = (out[:, 2] - out[:, 0] >= 1) & (out[:, 3] - out[:, 1] >= 1)
        return self.image(rgb), out[keep]


def _rotation(degrees: float) -> Perturbation:
    """``rotate_ccw15`` turns the picture 15 degrees counter-clockwise, ``rotate_cw15`` clockwise."""
    return Perturbation(
        f"rotate_{'ccw' if degrees > 0 else 'cw'}{abs(degrees):g}",
        lambda rgb: _rotate_image(rgb, degrees),
        lambda boxes, width, height: rotate_boxes(boxes, width, height, degrees),
    )


PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        Perturbation("original", lambda rgb: rgb.copy()),
        Perturbation("darker", _darker),
        Perturbation("brighter", _brighter),
        _rotation(15),
        _rotation(-15),
        _rotation(30),
        _rotation(-30),
        Perturbation("blur", _blur),
        Perturbation("jpeg_q10", _jpeg),
    )
}


def _perturb_truth(perturbation: Perturbation, image: Image, width: int, height: int) -> Image:
    """The ground truth after ``perturbation``: faces mostly cut off by the frame become ignore
    regions; boxes thinner than 1 px after clipping are dropped. Sizes are the array's."""
    sx, sy = width / (image.width or width), height / (image.height or height)
    scale = np.array([sx, sy, sx, sy])  # Image boxes are in its own frame; the array may differ
    faces, ignore = [], []
    for boxes, target in ((image.boxes, faces), (image.ignore, ignore)):
        moved = perturbation.boxes(_as_boxes(boxes) * scale, width, height)
        clipped = clip_boxes(moved, width, height)
        for full, box in zip(moved, clipped):
            w, h = box[2] - box[0], box[3] - box[1]
            if w < 1 or h < 1:
                continue
            visible = w * h / max((full[2] - full[0]) * (full[3] - full[1]), 1e-9)
            (target if visible >= MIN_VISIBLE else ignore).append(tuple(float(v) for v in box))
    return Image(image.file_name, width, height, faces, ignore)


def _detect_all(detector, rgb: np.ndarray) -> list[Detection]:
    """Every detection the detector gives (threshold 0 where it takes one)."""
    if hasattr(detector, "detect_batch"):
        return detector.detect_batch([rgb], threshold=0.0)[0]
    return detector(rgb)


def robustness_report(
    detector, images: list[np.ndarray], truth: list[Image], threshold: float | None = None, iou_threshold: float = 0.5
) -> list[dict]:
    """One row per perturbation, in `PERTURBATIONS` order: ``{"name", "ap50", "recall",
    "precision", "faces"}``. AP uses every detection (``detect_batch(..., threshold=0.0)`` when the
    detector has it, else ``detector(rgb)``); recall and precision are at ``threshold``, by default
    the detector's own ``threshold`` attribute (0.5 without one). ``faces`` counts the ground-truth
    faces after the perturbation (rotations can push some out of the frame)."""
    if len(images) != len(truth):
        raise ValueError(f"{len(images)} images but {len(truth)} ground truths")
    if threshold is None:
        threshold = float(getattr(detector, "threshold", 0.5))
    rows = []
    for name, perturbation in PERTURBATIONS.items():
        moved_truth, predictions = [], []
        for rgb, image in zip(images, truth):
            rgb = np.ascontiguousarray(rgb)
            height, width = rgb.shape[:2]
            moved_truth.append(_perturb_truth(perturbation, image, width, height))
            predictions.append(_detect_all(detector, perturbation.image(rgb)))
        m = detection_metrics(moved_truth, predictions, threshold, iou_threshold)
        rows.append(
            {
                "name": name,
                "ap50": m["ap50"],
                "recall": m["recall"],
                "precision": m["precision"],
                "faces": sum(len(image.boxes) for image in moved_truth),
            }
        )
    return rows


def plot_robustness(rows: list[dict], path: Path, title: str = "") -> None:
    """PNG (800 x 400 px) bar chart: AP@0.5 and recall per perturbation, on [0, 1]; nan as no bar."""
    fig, ax = new_chart(8, 4)
    names = [row["name"] for row in rows]
    x = np.arange(len(rows))
    width = 0.4
    for offset, key, color in ((-width / 2, "ap50", "tab:blue"), (width / 2, "recall", "tab:orange")):
        values = [float(row.get(key, math.nan)) for row in rows]
        bars = ax.bar(x + offset, [0.0 if v != v else v for v in values], width, label=key, color=color)
        for bar, value in zip(bars, values):
            ax.annotate(
                "n/a" if value != value else f"{value:.2f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 1),
                textcoords="offset points",
            )
    if rows and rows[0]["name"] == "original" and rows[0].get("ap50") == rows[0].get("ap50"):
        ax.axhline(rows[0]["ap50"], color="tab:blue", lw=0.8, ls="--", alpha=0.6)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0.0, 1.08)
    ax.set_ylabel("value")
    ax.legend(loc="lower left")
    ax.grid(True, axis="y", alpha=0.3)
    save_chart(fig, ax, path, title)
