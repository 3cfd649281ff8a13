"""The training augmentation: ``cfg.augment`` -> one bbox-aware albumentations pipeline, its file, its preview.

The augment stage writes the pipeline with albumentations' own serialisation (:func:`save`); the train
stage loads that file (:func:`load`), so what trains is exactly what the stage wrote and previewed.
Boxes are (x1, y1, x2, y2) pixels ("pascal_voc"); each face carries its index as label, so a box the
pipeline drops (cut away by a crop) is known by which face it was.
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
    return A.Compose([instantiate(entry) for entry in entries], bbox_params=bbox_params)


def save(pipeline: A.Compose, path: Path) -> None:
    A.save(pipeline, str(path), data_format="yaml")


def load(path: Path) -> A.Compose:
    """A pipeline written by :func:`save` (plain YAML: transform names and arguments, nothing executable)."""
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
    pipeline.set_random_seed(seed)
    result = pipeline(
        image=rgb, bboxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4), labels=list(range(len(boxes)))
    )
    return result["image"], np.asarray(result["bboxes"], dtype=np.float64).reshape(-1, 4), list(result["labels"])


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
    """An RGB grid: one row per image (the original, then ``draws`` augmented draws), boxes in green."""
    rows = []
    for index, image in enumerate(images):
        rgb = read(Path(images_dir) / image.file_name)
        cells = [_tile(rgb, np.asarray(image.boxes, dtype=np.float64).reshape(-1, 4), tile)]
        for draw in range(draws):
            out, boxes, _ = apply(pipeline, rgb, image.boxes, draw_seed(seed, draw, index))
            cells.append(_tile(out, boxes, tile))
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0) if rows else np.zeros((tile, tile, 3), np.uint8)


def _tile(rgb: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(rgb.shape[:2])
    small = cv2.resize(
        rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))), interpolation=cv2.INTER_AREA
    )
    cell = np.full((side, side, 3), 255, np.uint8)
    cell[: small.shape[0], : small.shape[1]] = small
    for x1, y1, x2, y2 in boxes * scale:
        cv2.rectangle(cell, (int(x1), int(y1)), (int(x2), int(y2)), (0, 200, 0), 1)
    cv2.rectangle(cell, (0, 0), (side - 1, side - 1), (128, 128, 128), 1)
    return cell
