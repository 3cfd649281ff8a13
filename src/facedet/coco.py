"""The canonical annotation format between stages: a COCO detection file with one category, "face".

Contract (written once, relied on everywhere):

- ``images``: ``{"id": int, "file_name": str, "width": int, "height": int}``; ``file_name`` is
  relative to the images folder that travels with the file.
- ``annotations``: ``{"id", "image_id", "category_id": 1, "bbox": [x, y, w, h], "area",
  "iscrowd": 0}`` with the box in pixels of that image, inside it, w and h > 0.
- ``"iscrowd": 1`` marks an ignore region (a face too small, blurred or invalid to judge): a
  detection there is neither right nor wrong (COCO's crowd semantics).
- An image with no (non-ignore) annotation is a negative (no face).
- Landmarks (COCO keypoints): a face annotation may carry ``"keypoints": [x1, y1, v1, ..., x5, y5, v5]``
  in pixels and ``"num_keypoints"`` (the points with v > 0), in the order of `KEYPOINT_NAMES`:
  the eye on the image's left (the person's right eye on an upright, frontal face), the other eye, the
  nose tip, the mouth corner on the image's left, the other mouth corner -- "left" is always the
  IMAGE's left, as in RetinaFace, YuNet and ArcFace's template; importers and exporters convert other
  conventions. ``v``: 0 not labelled (x = y = 0), 1 labelled but hidden, 2 labelled and visible. A face
  without landmarks has no ``keypoints`` key (or ``num_keypoints`` 0): normal, it is simply masked
  out of the landmark loss and NME.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # image-left first
# A horizontal mirror swaps the image-left and image-right points: new point k is old point FLIP_ORDER[k].
FLIP_ORDER = (1, 0, 2, 4, 3)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
FACE_CATEGORY = {"id": 1, "name": "face", "supercategory": "face", "keypoints": list(KEYPOINT_NAMES), "skeleton": []}


Box = tuple[float, float, float, float]
# One face's five points (x, y, v) in KEYPOINT_NAMES order, v as COCO's visibility (0, 1, 2).
Landmarks = tuple[tuple[float, float, int], ...]


def landmarks_from_flat(values: list) -> Landmarks | None:
    """COCO's flat ``[x1, y1, v1, ...]`` -> Landmarks, or None when no point is labelled."""
    points = tuple(
        (float(values[3 * k]), float(values[3 * k + 1]), int(values[3 * k + 2])) for k in range(NUM_KEYPOINTS)
    )
    return points if any(v > 0 for _, _, v in points) else None


def swap_sides(points: Landmarks) -> Landmarks:
    """The same five points with image-left and image-right exchanged (after a mirror, or to convert
    a file whose "left" is the person's left)."""
    return tuple(points[k] for k in FLIP_ORDER)


def landmarks_to_flat(points: Landmarks) -> list[float]:
    return [value for x, y, v in points for value in ((round(x, 2), round(y, 2), int(v)) if v > 0 else (0, 0, 0))]


@dataclass
class Image:
    """One image and its face boxes in pixels, as (x1, y1, x2, y2) with x1 < x2 and y1 < y2."""

    file_name: str
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    ignore: list[Box] = field(default_factory=list)
    # landmarks[i]: the five points of boxes[i], or None; shorter than boxes when the last faces have none.
    landmarks: list[Landmarks | None] = field(default_factory=list)

    def face_landmarks(self) -> list[Landmarks | None]:
        """One entry per face box: its five points, or None for a face without landmarks."""
        return [self.landmarks[i] if i < len(self.landmarks) else None for i in range(len(self.boxes))]


@dataclass
class Detection:
    """One predicted face: its box (x1, y1, x2, y2) in pixels and its score in [0, 1]."""

    box: Box
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = None  # five (x, y) in pixels, KEYPOINT_NAMES order


def to_coco(images: list[Image]) -> dict:
    """Build the canonical COCO dict; ids follow list order, starting at 1."""
    coco_images, annotations = [], []
    for image_id, image in enumerate(images, start=1):
        coco_images.append(
            {"id": image_id, "file_name": image.file_name, "width": int(image.width), "height": int(image.height)}
        )
        faces = [(0, box, points) for box, points in zip(image.boxes, image.face_landmarks())]
        for crowd, (x1, y1, x2, y2), points in faces + [(1, box, None) for box in image.ignore]:
            w, h = x2 - x1, y2 - y1
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": 1,
                "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
                "area": round(w * h, 2),
                "iscrowd": crowd,
            }
            if points is not None:
                annotation["keypoints"] = landmarks_to_flat(points)
                annotation["num_keypoints"] = sum(v > 0 for _, _, v in points)
            annotations.append(annotation)
    return {"images": coco_images, "annotations": annotations, "categories": [FACE_CATEGORY]}


def from_coco(coco: dict) -> list[Image]:
    """Inverse of [`to_coco`][]: images in file order with their boxes as (x1, y1, x2, y2)."""
    by_id = {img["id"]: Image(img["file_name"], img["width"], img["height"]) for img in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        image = by_id[ann["image_id"]]
        if ann.get("iscrowd"):
            image.ignore.append((x, y, x + w, y + h))
            continue
        points = ann.get("keypoints")
        image.landmarks = image.face_landmarks()
        image.boxes.append((x, y, x + w, y + h))
        image.landmarks.append(landmarks_from_flat(points) if points and ann.get("num_keypoints", 1) else None)
    for image in by_id.values():
        if not any(image.landmarks):
            image.landmarks = []
    return list(by_id.values())


def write(images: list[Image], path: Path) -> None:
    """Write the canonical file; ValueError (nothing written) for a NaN or infinite number, which
    strict JSON parsers refuse (the importers never let one through)."""
    text = json.dumps(to_coco(images), indent=1, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def read(path: Path) -> list[Image]:
    return from_coco(json.loads(Path(path).read_text()))
