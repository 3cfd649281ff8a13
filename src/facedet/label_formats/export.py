"""Export the canonical image list (facedet.coco.Image) to LabelMe and YOLO label files.

Both mirror ``Image.file_name`` (relative to the images folder) under ``out_dir``:
``a/b.jpg`` -> ``out_dir/a/b.json`` or ``out_dir/a/b.txt``. Two images with the same stem in one
folder (``x.jpg``, ``x.png``) would share a label file: the second gets ``x.png.json`` /
``x.png.txt`` (LabelMe pairs by ``imagePath``; YOLO does not, so such a clash is reported by a
ValueError for YOLO).

Ignore regions: LabelMe gets them as rectangles labelled ``ignore_label`` (default "ignore"; the
LabelMe importer skips that label, so they come back as nothing, not as faces). YOLO has no ignore
regions: they are left out (logged). Set ``ignore_label=None`` to leave them out of LabelMe too.

Landmarks: LabelMe gets each face's labelled points as point shapes named as
`facedet.coco.KEYPOINT_NAMES`, tied to the face's rectangle by a ``group_id`` (one per face);
YOLO gets pose lines (``kpt_shape: [5, 3]``, ``0 0 0`` for a point or a face without) when any face
has landmarks. Both write "left" as the image's left unless ``left="person"`` (then swapped).
"""

from __future__ import annotations

import logging
import posixpath
from pathlib import Path

from facedet.coco import NUM_KEYPOINTS, Image, swap_sides
from facedet.label_formats.formats import left_option
from facedet.label_formats.labelme import landmark_points, rectangle, write_labelme

log = logging.getLogger(__name__)


def _targets(images: list[Image], out_dir: Path, suffix: str) -> tuple[list[Path], list[str]]:
    """The label file of each image, and the images that clashed with another's label file name."""
    taken: set[str] = set()
    targets, clashes = [], []
    for image in images:
        rel = image.file_name.replace("\\", "/")
        key = posixpath.normpath(rel)
        if key.startswith("../") or key == ".." or key.startswith("/"):
            raise ValueError(f"{image.file_name}: file name leaves the images folder; not exported")
        name = posixpath.splitext(key)[0] + suffix
        if name in taken:
            clashes.append(image.file_name)
            name = key + suffix
        taken.add(name)
        targets.append(Path(out_dir, *name.split("/")))
    return targets, clashes


def export_labelme(
    images: list[Image],
    images_root: Path,
    out_dir: Path,
    *,
    label: str = "face",
    ignore_label: str | None = "ignore",
    left: str = "image",
) -> list[Path]:
    """One LabelMe JSON per image with faces (or ignore regions); images without are negatives.

    ``imagePath`` is the image (``images_root / file_name``) relative to the JSON's folder, with
    ``/`` separators; ``imageData`` is null; ``imageWidth``/``imageHeight`` are the Image's.
    Returns the files written.
    """
    images_root, out_dir = Path(images_root).absolute(), Path(out_dir).absolute()
    written = []
    for image, target in zip(images, _targets(images, out_dir, ".json")[0]):
        shapes = []
        for face, (box, points) in enumerate(zip(image.boxes, image.face_landmarks()), start=1):
            shapes.append(rectangle(label, box, face if points else None))
            if points:
                shapes += landmark_points(_sides(points, left), face)
        if ignore_label is not None:
            shapes += [rectangle(ignore_label, box) for box in image.ignore]
        if not shapes:
            continue
        write_labelme(target, images_root.joinpath(*image.file_name.split("/")), shapes, image.width, image.height)
        written.append(target)
    return written


def _sides(points, left: str):
    return swap_sides(points) if left_option(left) == "person" else points


def export_yolo(images: list[Image], out_dir: Path, *, left: str = "image") -> list[Path]:
    """One YOLO txt per image (empty for a negative): ``0 cx cy w h`` normalised, 6 decimals; YOLO-pose
    lines (``+ px py v`` x 5) for every face when any face has landmarks.

    For the ultralytics layout, export to ``<dataset>/labels`` the images of ``<dataset>/images``
    (file names relative to that images folder). Returns the files written.
    """
    out_dir = Path(out_dir).absolute()
    targets, clashes = _targets(images, out_dir, ".txt")
    if clashes:
        raise ValueError(
            f"export_yolo: {', '.join(clashes)}: another image of the same name in the same "
            f"folder (x.jpg, x.png) would share its YOLO label file; rename one"
        )
    left_out = 0
    written = []
    pose = any(any(image.landmarks) for image in images)
    for image, target in zip(images, targets):
        w, h = float(image.width), float(image.height)
        lines = []
        for (x1, y1, x2, y2), points in zip(image.boxes, image.face_landmarks()):
            line = f"0 {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
            if pose:
                points = _sides(points, left) if points else ((0.0, 0.0, 0),) * NUM_KEYPOINTS
                line += "".join(f" {x / w:.6f} {y / h:.6f} {v}" if v else " 0.000000 0.000000 0" for x, y, v in points)
            lines.append(line)
        left_out += len(image.ignore)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(line + "\n" for line in lines))
        written.append(target)
    if left_out:
        log.warning("export_yolo: %d ignore region(s) left out (YOLO has no ignore regions)", left_out)
    return written
