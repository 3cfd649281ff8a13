"""Evaluation figures written as PNG files: a precision-recall curve and a grid of predictions.

Matplotlib is used through its object API on the Agg canvas (no pyplot, no GUI, no global
backend change); the grid is drawn with OpenCV.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from facedet.coco import Image
from facedet.evaluation.metrics import Detection, best_f1_threshold
from facedet.images import write_image
from facedet.landmarks import COLOURS_RGB, draw_landmarks

GT_COLOR = (0, 255, 0)  # RGB green
PRED_COLOR = (255, 0, 0)  # RGB red
IGNORE_COLOR = (255, 255, 0)  # RGB yellow, dashed: ignore regions (COCO iscrowd=1)
BACKGROUND = (40, 40, 40)


def _interpolated_ap(curve: dict) -> float:
    """COCO-style 101-point interpolated AP from a pr_curve dict (ties grouped, so approximate)."""
    recall = np.asarray(curve["recall"], dtype=np.float64)
    precision = np.asarray(curve["precision"], dtype=np.float64)
    if recall.size == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0.0, 1.0, 101)
    index = np.searchsorted(recall, points, side="left")
    return float(np.mean([envelope[i] if i < len(envelope) else 0.0 for i in index]))


def new_chart(width: float, height: float):
    """(figure, axes) of a one-chart figure ``width`` x ``height`` inches at 100 dpi, drawn by Agg."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def save_chart(fig: Figure, ax, path: Path, title: str = "") -> None:
    """Title the chart (when a title is given), lay it out and write it as a PNG, folders made."""
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)


def plot_pr_curve(curve: dict, path: Path, title: str = "") -> None:
    """PNG (500 x 500 px) of precision against recall, both axes on [0, 1], best-F1 point marked."""
    fig, ax = new_chart(5, 5)
    if curve["recall"]:
        ax.plot(
            curve["recall"], curve["precision"], color="tab:blue", lw=1.5, label=f"AP ≈ {_interpolated_ap(curve):.3f}"
        )
        threshold, f1 = best_f1_threshold(curve)
        # the point the threshold keeps: the lowest score at or above it (thresholds descend)
        best = max(i for i, score in enumerate(curve["threshold"]) if score >= threshold)
        ax.plot(
            [curve["recall"][best]],
            [curve["precision"][best]],
            "o",
            color="tab:red",
            label=f"best F1 {f1:.3f} @ score {threshold:.2f}",
        )
        ax.legend(loc="lower left")
    else:
        ax.text(0.5, 0.5, "no detections", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(True, alpha=0.3)
    save_chart(fig, ax, path, title)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image * 255.0 if image.max(initial=0) <= 1.0 else image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def _dashed_rectangle(
    image: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], color, thickness: int, dash: int = 4
) -> None:
    """Rectangle outline drawn as dashes of ``dash`` px separated by gaps of ``dash`` px, starting
    at each corner."""
    (x1, y1), (x2, y2) = p1, p2
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x1, y2), (x2, y2)), ((x1, y1), (x1, y2)), ((x2, y1), (x2, y2))):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length + 1, 2 * dash):
            end = min(start + dash - 1, length)
            f0, f1 = start / max(length, 1), end / max(length, 1)
            cv2.line(
                image,
                (round(ax + (bx - ax) * f0), round(ay + (by - ay) * f0)),
                (round(ax + (bx - ax) * f1), round(ay + (by - ay) * f1)),
                color,
                thickness,
            )


def _tile(image: np.ndarray, truth: Image, detections: list[Detection], threshold: float, tile: int) -> np.ndarray:
    image = _as_rgb(image)
    h, w = image.shape[:2]
    scale = min(tile / w, tile / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.full((tile, tile, 3), BACKGROUND, dtype=np.uint8)
    ox, oy = (tile - new_w) // 2, (tile - new_h) // 2
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out[oy : oy + new_h, ox : ox + new_w] = cv2.resize(image, (new_w, new_h), interpolation=interp)
    # boxes are in the Image's pixel frame; the array may be a resized copy of it
    sx = new_w / (truth.width or w)
    sy = new_h / (truth.height or h)

    def corners(box):
        x1, y1, x2, y2 = box
        return (int(round(ox + x1 * sx)), int(round(oy + y1 * sy))), (
            int(round(ox + x2 * sx)),
            int(round(oy + y2 * sy)),
        )

    thickness = max(1, tile // 128)
    font_scale = max(0.3, tile / 640)
    for box in getattr(truth, "ignore", ()):
        _dashed_rectangle(out, *corners(box), IGNORE_COLOR, thickness)
    for box in truth.boxes:
        cv2.rectangle(out, *corners(box), GT_COLOR, thickness)
    radius = max(1, tile // 160)
    for points in truth.landmarks:
        if points is not None:  # the labelled points as rings, the predicted ones as dots
            for (x, y, v), colour in zip(points, COLOURS_RGB):
                if v > 0:
                    centre = (int(round(ox + x * sx)), int(round(oy + y * sy)))
                    cv2.circle(out, centre, radius + 1, colour, 1, cv2.LINE_AA)
    for det in detections:
        if float(det.score) < threshold:
            continue
        p1, p2 = corners(det.box)
        cv2.rectangle(out, p1, p2, PRED_COLOR, thickness)
        if det.landmarks is not None:
            draw_landmarks(out, det.landmarks, radius, scale=(sx, sy), offset=(ox, oy))
        cv2.putText(
            out,
            f"{float(det.score):.2f}",
            (p1[0], max(p1[1] - 3, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            PRED_COLOR,
            1,
            cv2.LINE_AA,
        )
    caption = Path(truth.file_name).name
    if caption:
        (_, text_h), baseline = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font_scale * 0.9, 1)
        cv2.rectangle(out, (0, tile - text_h - baseline - 4), (tile - 1, tile - 1), (0, 0, 0), -1)
        cv2.putText(
            out,
            caption[:40],
            (3, tile - 4),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale * 0.9,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return out


def prediction_grid(
    images: list[np.ndarray],
    truth: list[Image],
    predictions: list[list[Detection]],
    path: Path,
    threshold: float,
    columns: int = 4,
    tile: int = 256,
) -> None:
    """PNG grid: each RGB image resized to fit tile x tile (keep aspect, letterbox), ground-truth
    boxes green, ignore regions dashed yellow, predictions with score >= threshold red with the score printed, file name caption;
    labelled landmarks as rings and predicted ones as dots in [`facedet.landmarks`][]' colours.

    The grid is ``min(n, columns) * tile`` wide and ``ceil(n / columns) * tile`` high; with no
    image it is a single empty tile.
    """
    if not len(images) == len(truth) == len(predictions):
        raise ValueError(f"{len(images)} images, {len(truth)} truths, {len(predictions)} predictions")
    columns = max(1, int(columns))
    n = len(images)
    rows, cols = max(1, math.ceil(n / columns)), max(1, min(n, columns))
    grid = np.full((rows * tile, cols * tile, 3), BACKGROUND, dtype=np.uint8)
    for k, (image, gt, dets) in enumerate(zip(images, truth, predictions)):
        r, c = divmod(k, columns)
        grid[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = _tile(image, gt, dets, threshold, tile)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, grid)
