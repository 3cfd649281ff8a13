"""Import a folder of images annotated with LabelMe (https://github.com/wkentaro/labelme).

[`import_folder`][] walks a dataset folder and returns every image in it with its face boxes.
It accepts the layouts people actually hand over: ``images/`` + ``labels/`` (LabelMe's ``imagePath``
then reads ``..\\images\\x.jpg``, written on Windows), JSON files next to their images, or nested
folders. Images without a JSON file are negatives.

Every problem is recorded in the [`ProblemReport`][facedet.problems.ProblemReport] against the file's path
relative to the dataset folder; one bad file never stops the import. ``error`` means something was
dropped (a box, or an image whose faces are unknown); ``warning`` means the data was repaired.

Rules worth knowing:

- A label file is paired with an image through its ``imagePath`` (backslashes read as ``/``,
  relative to the JSON's folder). It can only name an image of the dataset folder: a path that
  leaves the folder (``../../etc/passwd``, an absolute path elsewhere, through a folder link) is
  refused and nothing outside is read. Folder links are not walked (as in the collect stage); image
  files that are links are images of the dataset when they stay inside it or point into a DVC cache
  ([`facedet.images.link_allowed`][]); other links are refused. If the named image does not exist,
  the image with the JSON's stem next to it, then the only image with that stem anywhere, is used
  (warning). An absolute Windows path
  (``C:\\...``, written by LabelMe when images and labels were on different drives) goes straight
  to that fallback.
- Boxes are in the image's pixels after EXIF orientation, which is how LabelMe shows images.
- A label file that cannot be read (not JSON, not LabelMe, malformed shapes, non-numeric
  coordinates, a link that leads out of the dataset folder: refused, never opened) is dropped and so is its image: its faces are unknown, and keeping it as a negative
  would teach the detector that its faces are background.
- ``imageData`` (the whole image in base64) is never decoded.
- Landmarks: point shapes labelled ``left_eye``, ``right_eye``, ``nose``, ``mouth_left``,
  ``mouth_right`` (see `LANDMARK_LABELS` for the other spellings read), "left" meaning the
  image's left (option ``left: person`` for files that mean the person's). A point belongs to the
  face rectangle with the same ``group_id``, or, without a group id, to the one face box it lies in.
  A point that belongs to no face or to several is reported (error) and left out; a face with a point
  twice, or with malformed points, keeps its box without landmarks (error). Faces may have none.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from facedet.coco import KEYPOINT_NAMES, Image, Landmarks
from facedet.label_formats.formats import BadLabels, Box, Size, accept_box, left_option, names_option
from facedet.label_formats.labelme_pairing import ImageIndex, file_stem, pair_image, takes_over
from facedet.label_formats.labelme_shapes import declared_frame, face_landmarks, load_labelme, shape_box
from facedet.label_formats.paths import image_size, scan
from facedet.problems import ProblemReport

log = logging.getLogger(__name__)

LABELME_VERSION = "5.4.1"


# --- writing LabelMe files (the one writer: prelabel, the sample, export-labels) -----------------


def rectangle(label: str, box: Box, group_id: int | None = None) -> dict:
    """A LabelMe rectangle shape, corners rounded to 0.01 px (``group_id`` ties landmark points to it)."""
    x1, y1, x2, y2 = (round(float(v), 2) for v in box)
    return {
        "label": label,
        "points": [[x1, y1], [x2, y2]],
        "group_id": group_id,
        "description": "",
        "shape_type": "rectangle",
        "flags": {},
        "mask": None,
    }


def labelme_text(image_path: str, shapes: list[dict], width: int, height: int) -> str:
    """A LabelMe 5.4.1 file as labelme writes it with ``--nodata`` (``imageData`` null; JSON
    indented by 2, ASCII, no final newline). ``image_path`` is relative to the file's folder."""
    return json.dumps(
        {
            "version": LABELME_VERSION,
            "flags": {},
            "shapes": shapes,
            "imagePath": image_path,
            "imageData": None,
            "imageHeight": int(height),
            "imageWidth": int(width),
        },
        indent=2,
    )


def write_labelme(path: Path, image: Path, shapes: list[dict], width: int, height: int, overwrite: bool = True) -> None:
    """Write the LabelMe file ``path`` for the image file ``image`` (its ``imagePath`` relative to
    ``path``'s folder, with ``/``). ``overwrite=False``: FileExistsError rather than replace a file."""
    path = Path(path)
    image_path = Path(os.path.relpath(Path(image).absolute(), path.parent.absolute())).as_posix()
    text = labelme_text(image_path, shapes, width, height)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w" if overwrite else "x", encoding="utf-8") as handle:  # "x": atomic, even in a race
        handle.write(text)


IGNORE_LABEL = "ignore"  # the label of ignore regions, read and written
# Point labels -> index in KEYPOINT_NAMES (written: the canonical names).
LANDMARK_LABELS = {name: k for k, name in enumerate(KEYPOINT_NAMES)} | {
    "nose_tip": 2,
    "left_mouth": 3,
    "right_mouth": 4,
    "mouth_left_corner": 3,
    "mouth_right_corner": 4,
}


def landmark_points(points: Landmarks, group_id: int) -> list[dict]:
    """LabelMe point shapes for one face's labelled points, tied to its rectangle by ``group_id``."""
    return [
        {
            "label": name,
            "points": [[round(float(x), 2), round(float(y), 2)]],
            "group_id": group_id,
            "description": "",
            "shape_type": "point",
            "flags": {},
            "mask": None,
        }
        for name, (x, y, v) in zip(KEYPOINT_NAMES, points)
        if v > 0
    ]


# --- reading LabelMe files (where they are: labelme_pairing; their shapes: labelme_shapes) -------


def import_labelme(src: Path, report: ProblemReport, *, names=("face",), left: str = "image") -> list[Image]:
    """The ``labelme`` format of the registry: [`import_folder`][] with ``names``, the shape labels
    that mean face, and ``left``, whose left the landmark labels mean ("image" or "person")."""
    return import_folder(Path(src), report, labels=names_option(names, "names"), left=left_option(left))


def import_folder(
    root: Path, report: ProblemReport, labels: Sequence[str] = ("face",), left: str = "image"
) -> list[Image]:
    """Every image under root (recursive), with its faces from LabelMe JSON files under root.

    ``Image.file_name`` is the image path relative to root, POSIX style; width and height are the
    image's size after EXIF orientation (read from the header, pixels are not decoded). An
    unreadable image is reported with ``report.error`` and dropped. Only shapes whose label is one
    of ``labels`` (case-insensitive, surrounding spaces ignored) become boxes; others are ignored.
    Sorted by file_name.
    """
    root = Path(root).absolute()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    if isinstance(labels, str):
        labels = (labels,)
    wanted = {str(name).strip().lower() for name in labels}

    image_paths, json_paths = scan(root, ".json", report)
    sizes: dict[str, Size] = {}
    for rel, path in image_paths.items():
        try:
            sizes[rel] = image_size(path)
        except BadLabels as err:
            report.error(rel, f"image dropped: {err}")

    state = _State(root, ImageIndex(image_paths), sizes, wanted, report, left)
    for json_rel in sorted(json_paths):
        try:
            state.import_label_file(json_rel, json_paths[json_rel])
        except Exception as err:  # noqa: BLE001 - a bug must not lose the whole import; say so
            log.exception("labelme: unexpected failure on %s", json_rel)
            lost = sorted(image for image, by in state.claimed.items() if by == json_rel)
            state.dropped.update(lost)
            report.error(
                json_rel,
                f"label file dropped: unexpected failure ({type(err).__name__}: {err})"
                + "".join(f"; its image {image} is dropped too" for image in lost),
            )

    if state.ignored:
        log.info("labelme: ignored shapes with other labels: %s", dict(sorted(state.ignored.items())))
    return [
        Image(
            rel,
            size.width,
            size.height,
            state.boxes.get(rel, []),
            state.ignore.get(rel, []),
            state.landmarks.get(rel, []),
        )
        for rel, size in sorted(sizes.items())
        if rel not in state.dropped
    ]


@dataclass
class _State:
    """One import: what is known so far about the images, filled in one label file at a time."""

    root: Path
    index: ImageIndex
    sizes: dict[str, Size]
    wanted: set[str]
    report: ProblemReport
    left: str = "image"
    boxes: dict[str, list[Box]] = field(default_factory=dict)
    landmarks: dict[str, list[Landmarks | None]] = field(default_factory=dict)
    ignore: dict[str, list[Box]] = field(default_factory=dict)  # ignore regions (shapes labelled IGNORE_LABEL)
    claimed: dict[str, str] = field(default_factory=dict)  # image -> the label file that claimed it
    dropped: set[str] = field(default_factory=set)  # images whose faces are unknown
    ignored: Counter = field(default_factory=Counter)  # shapes with other labels, by label

    def import_label_file(self, json_rel: str, path: Path) -> None:
        report = self.report
        json_dir = posixpath.dirname(json_rel)
        try:
            data = load_labelme(path)
            image_rel, note = pair_image(data.get("imagePath"), json_rel, self.root, self.index)
        except BadLabels as err:
            # Its image (when the file names tell which) goes too: its faces are unknown.
            guess = self.index.by_stem(json_dir, file_stem(json_rel))
            message = f"label file dropped: {err}"
            if guess is not None and guess not in self.dropped:
                message += f"; its image {guess} is dropped too (its faces are unknown)"
                self.dropped.add(guess)
                self.claimed.setdefault(guess, json_rel)
            report.error(json_rel, message)
            return
        if image_rel is None:
            embedded = isinstance(data.get("imageData"), str) and data["imageData"]
            report.error(
                json_rel,
                f"label file dropped: label file's image is missing ({note})"
                + ("; the JSON embeds imageData, from which the image could be restored" if embedded else ""),
            )
            return
        if image_rel in self.claimed:
            previous = self.claimed[image_rel]
            if not takes_over(self.root, json_rel, previous, image_rel):
                report.error(json_rel, f"label file ignored: {image_rel} is already labelled by {previous}")
                return
            report.error(previous, f"label file ignored: {image_rel} is labelled by its own file {json_rel}")
            self.boxes.pop(image_rel, None)
            self.landmarks.pop(image_rel, None)
            self.dropped.discard(image_rel)
        self.claimed[image_rel] = json_rel
        if note:
            report.warning(json_rel, note)
        if image_rel not in self.sizes:
            return  # an unreadable image, already reported
        try:
            self.boxes[image_rel], self.ignore[image_rel], self.landmarks[image_rel] = _boxes(
                data, json_rel, image_rel, self.sizes[image_rel], self.wanted, self.ignored, report, self.left
            )
        except BadLabels as err:
            self.dropped.add(image_rel)
            report.error(
                json_rel, f"label file dropped: {err}; its image {image_rel} is dropped too (its faces are unknown)"
            )


def _boxes(
    data: dict,
    json_rel: str,
    image_rel: str,
    size: Size,
    wanted: set[str],
    ignored: Counter,
    report: ProblemReport,
    left: str = "image",
) -> tuple[list[Box], list[Box], list[Landmarks | None]]:
    """(face boxes, ignore regions, landmarks of each face) of a LabelMe file, in the image's pixels,
    inside it. Shapes labelled ``ignore`` (what ``facedet export-labels`` writes for ignore regions)
    are ignore regions: neither a face to find nor background."""
    raw_boxes, raw_points = [], []
    for i, shape in enumerate(data["shapes"]):
        where = f"shape {i}"
        if not isinstance(shape, dict):
            raise BadLabels(f"{where} is not an object")
        label = shape.get("label")
        if not isinstance(label, str):
            raise BadLabels(f"{where} has no label")
        name = label.strip().lower()
        if name in LANDMARK_LABELS and name not in wanted:
            raw_points.append((f"{where} ('{label}')", LANDMARK_LABELS[name], shape))
            continue
        is_ignore = name == IGNORE_LABEL and IGNORE_LABEL not in wanted
        if name not in wanted and not is_ignore:
            ignored[label.strip()] += 1
            continue
        box = shape_box(shape, f"{where} ('{label}')", json_rel, report)
        if box is not None:
            raw_boxes.append((where, box, is_ignore, shape.get("group_id")))
    transform = declared_frame(data, json_rel, image_rel, size, report)
    accepted = [
        (accept_box(transform(box), size, image_rel, json_rel, where, report), is_ignore, group, where)
        for where, box, is_ignore, group in raw_boxes
    ]
    faces = [(box, group, where) for box, is_ignore, group, where in accepted if not is_ignore]
    landmarks = face_landmarks(faces, raw_points, transform, size, json_rel, report, left)
    return [box for box, _, _ in faces], [b for b, i, _, _ in accepted if i], landmarks
