"""The training augmentation: ``cfg.augment`` -> one bbox-aware albumentations pipeline, its file, its preview.

The augment stage writes the pipeline with albumentations' own serialisation (`save`); the train
stage loads that file ([`load`][]), so what trains is exactly what the stage wrote and previewed.
Boxes are (x1, y1, x2, y2) pixels ("pascal_voc"); each face carries its index as label, so a box the
pipeline drops (cut away by a crop) is known by which face it was. Landmarks go through as keypoints
("xy", kept even when outside): a point cut away by a crop is masked (v 0), and a draw that mirrors the
picture (a flip; told by the orientation of three reference points, so any transform counts) swaps the
image-left and image-right points (`facedet.coco.FLIP_ORDER`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf

from facedet import coco
from facedet.coco import FLIP_ORDER, NUM_KEYPOINTS
from facedet.landmarks import draw_landmarks, landmark_array

PIPELINE_FILE = "pipeline.yaml"
# A draw of (seed, epoch, index) seeds the pipeline with this number (< 2**32, what numpy accepts).
_MIX = (1_000_003, 1_009)


def build(augment_cfg: Mapping) -> A.Compose:
    """``augment_cfg.transforms`` (Hydra ``_target_`` entries, nested ``OneOf``/``Sequential`` too)."""
    entries = augment_cfg["transforms"]
    entries = OmegaConf.to_container(entries, resolve=True) if OmegaConf.is_config(entries) else list(entries)
    bbox_params = A.BboxParams(
        format="pascal_voc",
        label_fields=["labels"],
        clip=True,
        min_visibility=float(augment_cfg["min_visibility"]),
        filter_invalid_bboxes=True,
    )
    keypoint_params = A.KeypointParams(format="xy", remove_invisible=False)
    return A.Compose(
        [instantiate(entry) for entry in entries], bbox_params=bbox_params, keypoint_params=keypoint_params
    )


def save(pipeline: A.Compose, path: Path) -> None:
    A.save(pipeline, str(path), data_format="yaml")


def load(path: Path) -> A.Compose:
    """A pipeline written by `save` (plain YAML: transform names and arguments, nothing executable)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no augmentation pipeline (run the augment stage)")
    with warnings.catch_warnings():
        # albumentations 2.0.8 writes PadIfNeeded's derived "padding" and then warns that it is no argument.
        warnings.filterwarnings("ignore", message=r"Argument\(s\) 'padding' are not valid")
        return A.load(str(path), data_format="yaml")


def draw_seed(seed: int, epoch: int, index: int) -> int:
    return (int(seed) * _MIX[0] + int(epoch) * _MIX[1] + int(index) * 7_919) % 2**32


def apply(pipeline: A.Compose, rgb: np.ndarray, boxes: Sequence, seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One seeded draw: (augmented image, kept boxes [K, 4] in its pixels, index of each kept face)."""
    image, boxes, kept, _ = apply_with_landmarks(pipeline, rgb, boxes, None, seed)
    return image, boxes, kept


def apply_with_landmarks(
    pipeline: A.Compose, rgb: np.ndarray, boxes: Sequence, landmarks: np.ndarray | None, seed: int
) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray]:
    """[`apply`][] with each face's five points ``landmarks`` [N, 5, 3] (x, y, v; v 0 not labelled;
    None: no face has any): also returns the kept faces' points [K, 5, 3] in the augmented picture,
    v 0 where a point is not labelled or left the picture, left and right swapped after a mirror."""
    height, width = rgb.shape[:2]
    landmarks = (
        np.zeros((len(boxes), NUM_KEYPOINTS, 3)) if landmarks is None else np.asarray(landmarks, np.float64)
    ).reshape(len(boxes), NUM_KEYPOINTS, 3)
    reference = np.array([[0.0, 0.0], [width, 0.0], [0.0, height]])
    # albumentations' keypoints are pixel indices (its flip maps x to W - 1 - x); ours are continuous
    # coordinates like the boxes (a pixel's centre at i + 0.5; a flip maps x to W - x).
    keypoints = np.concatenate([landmarks[..., :2].reshape(-1, 2), reference]) - 0.5
    pipeline.set_random_seed(seed)
    result = pipeline(
        image=rgb,
        bboxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=list(range(len(boxes))),
        keypoints=keypoints.astype(np.float32),
    )
    kept = [int(k) for k in result["labels"]]
    moved = np.asarray(result["keypoints"], dtype=np.float64)[:, :2] + 0.5
    points, (a, b, c) = moved[:-3].reshape(-1, NUM_KEYPOINTS, 2), moved[-3:]
    visibility = landmarks[..., 2].copy()
    out_h, out_w = result["image"].shape[:2]
    inside = (points[..., 0] >= 0) & (points[..., 0] <= out_w) & (points[..., 1] >= 0) & (points[..., 1] <= out_h)
    visibility[~inside] = 0
    moved_points = np.concatenate([points, visibility[..., None]], axis=-1)
    moved_points[visibility == 0] = 0
    # The reference triangle's orientation: its sign changes exactly when the draw mirrored the picture.
    mirrored = np.cross(b - a, c - a) < 0
    if mirrored:
        moved_points = moved_points[:, list(FLIP_ORDER)]
    return (
        result["image"],
        np.asarray(result["bboxes"], dtype=np.float64).reshape(-1, 4),
        kept,
        moved_points[kept].reshape(-1, NUM_KEYPOINTS, 3),
    )


def statistics(
    pipeline: A.Compose, images: list[coco.Image], images_dir: Path, draws: int, seed: int, min_face: float, read
) -> dict[str, float]:
    """Per draw of every image: faces kept, kept but below ``min_face`` pixels (trained as ignore
    regions), and dropped (cut away by a crop); and the share of draws left with no face."""
    counts = {"faces_in": 0, "kept": 0, "small": 0, "dropped": 0, "draws": 0, "draws_without_face": 0}
    for index, image in enumerate(images):
        rgb = read(Path(images_dir) / image.file_name)
        for draw in range(draws):
            _, boxes, _ = apply(pipeline, rgb, image.boxes, draw_seed(seed, draw, index))
            small = int(((boxes[:, 2:] - boxes[:, :2]).min(axis=1) < min_face).sum()) if len(boxes) else 0
            counts["faces_in"] += len(image.boxes)
            counts["kept"] += len(boxes) - small
            counts["small"] += small
            counts["dropped"] += len(image.boxes) - len(boxes)
            counts["draws"] += 1
            counts["draws_without_face"] += int(len(boxes) - small == 0)
    faces = max(1, counts["faces_in"])
    return {
        **counts,
        "kept_share": counts["kept"] / faces,
        "small_share": counts["small"] / faces,
        "dropped_share": counts["dropped"] / faces,
    }


def preview(
    pipeline: A.Compose, images: list[coco.Image], images_dir: Path, draws: int, seed: int, read, tile: int = 160
) -> np.ndarray:
    """An RGB grid: one row per image (the original, then ``draws`` augmented draws), boxes in green,
    landmarks as dots ([`facedet.landmarks`][])."""
    rows = []
    for index, image in enumerate(images):
        rgb = read(Path(images_dir) / image.file_name)
        points = landmark_array(image)
        cells = [_tile(rgb, np.asarray(image.boxes, dtype=np.float64).reshape(-1, 4), tile, points)]
        for draw in range(draws):
            out, boxes, _, moved = apply_with_landmarks(
                pipeline, rgb, image.boxes, points, draw_seed(seed, draw, index)
            )
            cells.append(_tile(out, boxes, tile, moved))
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0) if rows else np.zeros((tile, tile, 3), np.uint8)


def _tile(rgb: np.ndarray, boxes: np.ndarray, side: int, points: np.ndarray | None = None) -> np.ndarray:
    scale = side / max(rgb.shape[:2])
    small = cv2.resize(
        rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))), interpolation=cv2.INTER_AREA
    )
    cell = np.full((side, side, 3), 255, np.uint8)
    cell[: small.shape[0], : small.shape[1]] = small
    for x1, y1, x2, y2 in boxes * scale:
        cv2.rectangle(cell, (int(x1), int(y1)), (int(x2), int(y2)), (0, 200, 0), 1)
    for face in points if points is not None else ():
        draw_landmarks(cell, face, radius=1, scale=(scale, scale))
    cv2.rectangle(cell, (0, 0), (side - 1, side - 1), (128, 128, 128), 1)
    return cell
