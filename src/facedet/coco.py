"""The canonical annotation format between stages: a COCO detection file with one category, "face".

Contract (written once, relied on everywhere):
- ``images``: ``{"id": int, "file_name": str, "width": int, "height": int}``; ``file_name`` is
  relative to the images folder that travels with the file.
- ``annotations``: ``{"id", "image_id", "category_id": 1, "bbox": [x, y, w, h], "area",
  "iscrowd": 0}`` with the box in pixels of that image, inside it, w and h > 0.
- ``"iscrowd": 1`` marks an ignore region (a face too small, blurred or invalid to judge): a
  detection there is neither right nor wrong (COCO's crowd semantics).
- An image with no (non-ignore) annotation is a negative (no face).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FACE_CATEGORY = {"id": 1, "name": "face", "supercategory": "face"}


Box = tuple[float, float, float, float]


@dataclass
class Image:
    """One image and its face boxes in pixels, as (x1, y1, x2, y2) with x1 < x2 and y1 < y2."""

    file_name: str
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    ignore: list[Box] = field(default_factory=list)


@dataclass
class Detection:
    """One predicted face: its box (x1, y1, x2, y2) in pixels and its score in [0, 1]."""

    box: Box
    score: float


def to_coco(images: list[Image]) -> dict:
    """Build the canonical COCO dict; ids follow list order, starting at 1."""
    coco_images, annotations = [], []
    for image_id, image in enumerate(images, start=1):
        coco_images.append(
            {"id": image_id, "file_name": image.file_name, "width": int(image.width), "height": int(image.height)}
        )
        for crowd, boxes in ((0, image.boxes), (1, image.ignore)):
            for x1, y1, x2, y2 in boxes:
                w, h = x2 - x1, y2 - y1
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": 1,
                        "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
                        "area": round(w * h, 2),
                        "iscrowd": crowd,
                    }
                )
    return {"images": coco_images, "annotations": annotations, "categories": [FACE_CATEGORY]}


def from_coco(coco: dict) -> list[Image]:
    """Inverse of :func:`to_coco`: images in file order with their boxes as (x1, y1, x2, y2)."""
    by_id = {img["id"]: Image(img["file_name"], img["width"], img["height"]) for img in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        image = by_id[ann["image_id"]]
        (image.ignore if ann.get("iscrowd") else image.boxes).append((x, y, x + w, y + h))
    return list(by_id.values())


def write(images: list[Image], path: Path) -> None:
    """Write the canonical file; ValueError (nothing written) for a NaN or infinite number, which
    strict JSON parsers refuse (the importers never let one through)."""
    text = json.dumps(to_coco(images), indent=1, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def read(path: Path) -> list[Image]:
    return from_coco(json.loads(Path(path).read_text()))
