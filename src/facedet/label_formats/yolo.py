"""Import YOLO (ultralytics) detection labels: one ``.txt`` per image, one object per line.

A line is ``class cx cy w h``: the class index and the box centre and size as fractions of the
image's width and height (after EXIF orientation). YOLO-pose lines (``kpt_shape: [5, 3]``) add five
``px py v`` (fractions, v 0 absent / 1 hidden / 2 visible; 20 values in all): the face's landmarks,
in the order of `facedet.coco.KEYPOINT_NAMES` ("left" meaning ``left``: "image" or "person").
Malformed points drop the landmarks, not the face (error). ultralytics' segment lines
``class x1 y1 x2 y2 x3 y3 ...`` (a polygon, normalised) are read as the box around the polygon.

Layouts (the image's label file is the first that exists):

- ultralytics: ``images/<...>/x.jpg`` -> ``labels/<...>/x.txt`` (the last ``images`` folder of the
  path replaced by ``labels``; also ``train/images`` + ``train/labels``);
- side by side: ``x.jpg`` -> ``x.txt`` in the same folder.

Conventions:

- Every image under ``src`` is imported; an image without a label file, or with an empty one, is
  a negative. Label files without an image are reported (warning) and ignored.
- ``classes``: the class indices that mean face (default ``[0]``); other classes are ignored.
- A value outside [0, 1] is named in the message: a box that still overlaps the image is clipped
  (warning), one entirely outside is rejected (error). Values all above 1 are called out as
  pixel coordinates (error, box rejected).
- A line that cannot be read (wrong number of values, not numbers, a class that is not a whole
  number) drops the label file and its image (error: the image's faces are unknown).
"""

from __future__ import annotations

import logging
import posixpath
from collections import Counter
from pathlib import Path

from facedet.coco import NUM_KEYPOINTS, Image
from facedet.label_formats.formats import (
    BadLabels,
    Size,
    accept_box,
    accept_landmarks,
    excerpt,
    left_option,
    parse_float,
    sorted_images,
)
from facedet.label_formats.paths import (
    REFUSED_LINK,
    dataset_root,
    folder_really_inside,
    image_size,
    label_path,
    read_text,
    scan,
)
from facedet.problems import ProblemReport

log = logging.getLogger(__name__)

_NOT_LABELS = {"classes.txt", "readme.txt", "notes.txt", "labels.txt", "obj.names"}


def import_yolo(src: Path, report: ProblemReport, *, classes: list[int] = (0,), left: str = "image") -> list[Image]:
    """Every image under src with the boxes (and YOLO-pose landmarks) of its YOLO label file (classes in ``classes``)."""
    root = dataset_root(src)
    wanted = _classes(classes)
    left = left_option(left)
    image_paths, txt_paths = scan(root, ".txt", report)
    used: set[str] = set()
    ignored: Counter = Counter()
    result: dict[str, Image] = {}
    for rel, path in sorted(image_paths.items()):
        label_rel = next((c for c in _candidates(rel) if c in txt_paths), None)
        if label_rel is not None:
            used.add(label_rel)
        try:
            size = image_size(path)
        except BadLabels as err:
            report.error(rel, f"image dropped: {err}" + (f" (labelled in {label_rel})" if label_rel else ""))
            continue
        image = Image(rel, size.width, size.height)
        if label_rel is not None:
            try:
                path = label_path(txt_paths[label_rel])  # a refused link: BadLabels, never opened
                if not folder_really_inside(path, root):
                    raise BadLabels("its folder leads outside the dataset folder through a link (refused)")
                _read(read_text(path), image, size, label_rel, wanted, ignored, report, left)
            except BadLabels as err:
                report.error(
                    label_rel, f"label file dropped: {err}; its image {rel} is dropped too (its faces are unknown)"
                )
                continue
            except Exception as err:  # noqa: BLE001 - one bad file must not stop the import
                log.exception("yolo: unexpected failure on %s", label_rel)
                report.error(
                    label_rel,
                    f"label file dropped: unexpected failure ({type(err).__name__}: "
                    f"{err}); its image {rel} is dropped too",
                )
                continue
        result[rel] = image
    for label_rel in sorted(set(txt_paths) - used):
        if txt_paths[label_rel] is None:
            report.error(label_rel, f"label file dropped: {REFUSED_LINK}")
            continue
        name = posixpath.basename(label_rel).lower()
        in_labels = "labels" in label_rel.split("/")[:-1]
        next_to_images = any(posixpath.dirname(r) == posixpath.dirname(label_rel) for r in image_paths)
        if name not in _NOT_LABELS and (in_labels or next_to_images):
            report.warning(
                label_rel,
                "label file without an image (no image of the same name in the "
                "matching images folder or next to it); ignored",
            )
    if ignored:
        log.info("yolo: ignored objects of other classes: %s", dict(sorted(ignored.items())))
    return sorted_images(result)


def _classes(value) -> set[int]:
    if isinstance(value, (int, str)):
        value = [value]
    try:
        result = {int(v) for v in value}
    except (TypeError, ValueError):
        raise ValueError(f"classes: expected a list of class indices, got {value!r}") from None
    if not result:
        raise ValueError("classes: no class given")
    return result


def _candidates(image_rel: str) -> list[str]:
    """Label files an image may have, in order: ultralytics' labels/ folder, then side by side."""
    stem = posixpath.splitext(image_rel)[0]
    parts = stem.split("/")
    found = []
    for i in range(len(parts) - 2, -1, -1):  # the last "images" folder of the path
        if parts[i] == "images":
            found.append("/".join(parts[:i] + ["labels"] + parts[i + 1 :]) + ".txt")
            break
    found.append(stem + ".txt")
    return found


POSE_VALUES = 4 + 3 * NUM_KEYPOINTS  # cx cy w h + five (px, py, v)


def _read(
    text: str,
    image: Image,
    size: Size,
    label_rel: str,
    wanted: set[int],
    ignored: Counter,
    report: ProblemReport,
    left: str = "image",
) -> None:
    boxes, poses = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"line {n}"
        if len(tokens) not in (5, 1 + POSE_VALUES) and (len(tokens) < 7 or len(tokens) % 2 == 0):
            raise BadLabels(
                f"{where}: expected 'class cx cy w h' (5 values), a pose line 'class cx cy w h' + five "
                f"'px py v' (20 values) or a polygon 'class x1 y1 x2 y2 x3 y3 ...', got {len(tokens)} values"
            )
        try:
            cls_value, *values = (parse_float(t) for t in tokens)
        except BadLabels as err:
            raise BadLabels(f"{where}: {err}") from None
        if not cls_value.is_integer() or cls_value < 0:
            raise BadLabels(f"{where}: class '{excerpt(tokens[0])}' is not a class index")
        if int(cls_value) not in wanted:
            ignored[int(cls_value)] += 1
            continue
        pose = values[4:] if len(values) == POSE_VALUES else None
        if pose is not None:
            values = values[:4]
        if len(values) == 4:
            cx, cy, w, h = values
            named = dict(zip(("cx", "cy", "w", "h"), values))
            box = (
                (cx - w / 2) * size.width,
                (cy - h / 2) * size.height,
                (cx + w / 2) * size.width,
                (cy + h / 2) * size.height,
            )
        else:
            xs, ys = values[0::2], values[1::2]
            named = {f"{axis}{i + 1}": v for i, (x, y) in enumerate(zip(xs, ys)) for axis, v in (("x", x), ("y", y))}
            box = min(xs) * size.width, min(ys) * size.height, max(xs) * size.width, max(ys) * size.height
        outside = [f"{k}={v:g}" for k, v in named.items() if not 0 <= v <= 1]
        if len(values) == 4 and min(values) > 1:
            raise BadLabels(
                f"{where}: values {excerpt(' '.join(tokens[1:]))} are all above 1: pixel "
                f"coordinates? YOLO boxes are fractions of the image size"
            )
        if outside:
            where += f" (outside [0, 1]: {excerpt(', '.join(outside), 60)})"
        boxes.append(accept_box(box, size, image.file_name, label_rel, where, report))
        poses.append((where, pose))
    for box, (where, pose) in zip(boxes, poses):
        points = None
        if pose is not None and any(pose[2::3]):
            triples = zip(pose[0::3], pose[1::3], pose[2::3])
            points = [
                (px * size.width, py * size.height, int(v) if float(v).is_integer() else v) for px, py, v in triples
            ]
        image.boxes.append(box)
        image.landmarks.append(accept_landmarks(points, box, size, left, label_rel, where, report) if points else None)
    if not any(image.landmarks):
        image.landmarks = []
