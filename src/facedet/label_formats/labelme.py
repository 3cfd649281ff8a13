"""Import a folder of images annotated with LabelMe (https://github.com/wkentaro/labelme).

:func:`import_folder` walks a dataset folder and returns every image in it with its face boxes.
It accepts the layouts people actually hand over: ``images/`` + ``labels/`` (LabelMe's ``imagePath``
then reads ``..\\images\\x.jpg``, written on Windows), JSON files next to their images, or nested
folders. Images without a JSON file are negatives.

Every problem is recorded in the :class:`~facedet.problems.ProblemReport` against the file's path
relative to the dataset folder; one bad file never stops the import. ``error`` means something was
dropped (a box, or an image whose faces are unknown); ``warning`` means the data was repaired.

Rules worth knowing:

- A label file is paired with an image through its ``imagePath`` (backslashes read as ``/``,
  relative to the JSON's folder). It can only name an image of the dataset folder: a path that
  leaves the folder (``../../etc/passwd``, an absolute path elsewhere, through a folder link) is
  refused and nothing outside is read. Folder links are not walked (as in the collect stage); image
  files that are links are images of the dataset when they stay inside it or point into a DVC cache
  (:func:`facedet.images.link_allowed`); other links are refused. If the named image does not exist,
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
  ``mouth_right`` (see :data:`LANDMARK_LABELS` for the other spellings read), "left" meaning the
  image's left (option ``left: person`` for files that mean the person's). A point belongs to the
  face rectangle with the same ``group_id``, or, without a group id, to the one face box it lies in.
  A point that belongs to no face or to several is reported (error) and left out; a face with a point
  twice, or with malformed points, keeps its box without landmarks (error). Faces may have none.
"""

from __future__ import annotations

import json
import logging
import math
import os
import posixpath
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from facedet.coco import KEYPOINT_NAMES, Image, Landmarks
from facedet.images import IMAGE_EXTENSIONS  # noqa: F401 - re-exported (the tests import it here)
from facedet.label_formats.formats import (
    BadLabels,
    Box,
    Outside,
    Size,
    accept_box,
    accept_landmarks,
    excerpt,
    finite,
    frame,
    left_option,
    names_option,
)
from facedet.label_formats.paths import WINDOWS_ABSOLUTE, image_size, label_path, read_text, really_inside, scan
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


# --- where LabelMe files are ---------------------------------------------------------------------


def images_folder_index(parts: tuple[str, ...]) -> int | None:
    """Index of the last folder named ``images`` among parts (folders only), or None."""
    found = [i for i, part in enumerate(parts) if part.lower() == "images"]
    return found[-1] if found else None


def label_candidates(image: Path) -> list[Path]:
    """Where a LabelMe file for this image would be: beside it, and (when it is under a folder named
    images) at the same place under the sibling labels/ folder. The first one that applies to the
    layout comes first."""
    image = Path(os.path.abspath(image))
    beside = image.with_suffix(".json")
    folders = image.parent.parts
    k = images_folder_index(folders)
    if k is None:
        return [beside]
    mirrored = Path(*folders[:k], "labels", *folders[k + 1 :], image.stem + ".json")
    return [mirrored, beside]


def has_label_file(image: Path) -> bool:
    """Whether a LabelMe file for this image sits beside it or in the sibling labels/ folder."""
    return any(p.is_file() for p in label_candidates(image))


def import_labelme(src: Path, report: ProblemReport, *, names=("face",), left: str = "image") -> list[Image]:
    """The ``labelme`` format of the registry: :func:`import_folder` with ``names``, the shape labels
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

    state = _State(root, _Index(image_paths), sizes, wanted, report, left)
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


def label_files(root: Path) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """The LabelMe files under root paired with their images as :func:`import_folder` pairs them.

    Returns (image -> label file, unusable): the first label file of each image, and (image, label
    file, why) for each label file that cannot be used whose image its file name tells (that image
    is in the first too). Paths are POSIX, relative to root. Image files are not opened.
    """
    root = Path(root)
    images, jsons = scan(root, ".json")
    index = _Index(images)
    claimed: dict[str, str] = {}
    unusable: list[tuple[str, str, str]] = []
    for json_rel in sorted(jsons):
        try:
            data = _load(jsons[json_rel])
            image_rel, _ = _pair(data.get("imagePath"), json_rel, root, index)
        except BadLabels as err:
            image_rel = index.by_stem(posixpath.dirname(json_rel), _stem(json_rel))
            if image_rel is not None:
                unusable.append((image_rel, json_rel, str(err)))
        if image_rel is not None and (image_rel not in claimed or _wins(root, json_rel, claimed[image_rel], image_rel)):
            claimed[image_rel] = json_rel
    return claimed, unusable


@dataclass
class _State:
    """One import: what is known so far about the images, filled in one label file at a time."""

    root: Path
    index: _Index
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
            data = _load(path)
            image_rel, note = _pair(data.get("imagePath"), json_rel, self.root, self.index)
        except BadLabels as err:
            # Its image (when the file names tell which) goes too: its faces are unknown.
            guess = self.index.by_stem(json_dir, _stem(json_rel))
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
            if not _wins(self.root, json_rel, previous, image_rel):
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


# --- finding files ---------------------------------------------------------------------------


def _wins(root: Path, json_rel: str, previous: str, image_rel: str) -> bool:
    """Whether ``json_rel`` takes ``image_rel`` from the label file ``previous`` that claimed it
    first: when it is the image's own file (beside it, or mirrored under labels/) and ``previous``
    is not."""
    own = set(label_candidates(root / image_rel))
    return Path(os.path.abspath(root / json_rel)) in own and Path(os.path.abspath(root / previous)) not in own


def _stem(rel: str) -> str:
    return posixpath.splitext(posixpath.basename(rel))[0]


class _Index:
    """Looks images up by name, for label files whose ``imagePath`` does not lead to one."""

    def __init__(self, images: dict[str, Path]):
        self.images = images
        self._dir_stem: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._stem: dict[str, list[str]] = defaultdict(list)
        for rel in sorted(images):
            self._dir_stem[(posixpath.dirname(rel), _stem(rel))].append(rel)
            self._stem[_stem(rel)].append(rel)

    def next_to(self, folder: str, stem: str) -> str | None:
        found = self._dir_stem.get((folder, stem), [])
        return found[0] if len(found) == 1 else None

    def anywhere(self, stem: str) -> str | None:
        found = self._stem.get(stem, [])
        return found[0] if len(found) == 1 else None

    def by_stem(self, folder: str, stem: str) -> str | None:
        return self.next_to(folder, stem) or self.anywhere(stem)


def _pair(image_path: object, json_rel: str, root: Path, index: _Index) -> tuple[str | None, str]:
    """(image, note): the image a label file is about, or (None, why not).

    The note is a warning to report when the image was found some other way than by imagePath.
    Raises Outside when imagePath leads out of the dataset folder.
    """
    json_dir, stem = posixpath.dirname(json_rel), _stem(json_rel)
    if image_path is not None and not isinstance(image_path, str):
        raise BadLabels(f"imagePath is not a string ({type(image_path).__name__})")
    written = (image_path or "").replace("\\", "/").strip()
    if not written:
        why = "no imagePath"
    elif WINDOWS_ABSOLUTE.match(written):
        why = f"imagePath '{image_path}' is an absolute Windows path"
    else:
        key = _lexical(written, json_dir, root)
        if key is not None and key in index.images:
            return key, ""  # an image found by the walk: nothing else is ever read
        if key is None or not really_inside(root / key, root):
            raise Outside(f"imagePath '{image_path}' points outside the dataset folder (refused)")
        why = f"imagePath '{image_path}' does not exist"
    found = index.by_stem(json_dir, stem)
    if found is None:
        return None, f"{why}, and no single image named '{stem}.*' was found"
    return found, f"{why}; paired by file name with {found}"


def _lexical(written: str, json_dir: str, root: Path) -> str | None:
    """imagePath as a normalised POSIX path relative to root, or None if it leads out of root."""
    if written.startswith("/"):
        for base in (str(root), os.path.realpath(root)):
            if written == base or written.startswith(base.rstrip("/") + "/"):
                written = written[len(base) :].lstrip("/") or "."
                break
        else:
            return None
        key = posixpath.normpath(written)
    else:
        key = posixpath.normpath(posixpath.join(json_dir, written))
    return None if key == ".." or key.startswith("../") else key


# --- reading files ---------------------------------------------------------------------------


def _load(path: Path | None) -> dict:
    """A LabelMe file's JSON (at most :data:`~facedet.label_formats.formats.MAX_LABEL_BYTES`, refused
    before it is read); BadLabels when it is not one, or when it is a link that :func:`scan` refused
    (None: never opened)."""
    try:
        text = read_text(label_path(path))
    except BadLabels as err:
        raise BadLabels(f"not a LabelMe file ({err})" if "UTF-8" in str(err) else str(err)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadLabels(f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except (ValueError, RecursionError) as err:  # e.g. a 5000-digit number, nesting 100000 deep
        raise BadLabels(f"not usable JSON ({type(err).__name__}: {excerpt(err, 80)})") from None
    if not isinstance(data, dict):
        raise BadLabels(f"not a LabelMe file (the JSON is a {type(data).__name__}, not an object)")
    if "shapes" not in data:
        raise BadLabels("not a LabelMe file (no 'shapes' key)")
    if not isinstance(data["shapes"], list):
        raise BadLabels(f"'shapes' is not a list ({type(data['shapes']).__name__})")
    return data


def _points(shape: dict, where: str) -> list[tuple[float, float]]:
    raw = shape.get("points")
    if not isinstance(raw, list):
        raise BadLabels(f"{where}: 'points' is not a list")
    points = []
    for point in raw:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise BadLabels(f"{where}: point {_json_excerpt(point)} is not an [x, y] pair")
        if not (finite(point[0]) and finite(point[1])):
            raise BadLabels(f"{where}: point {_json_excerpt(point)} has a coordinate that is not a number")
        points.append((float(point[0]), float(point[1])))
    return points


def _json_excerpt(value: object) -> str:
    return excerpt(json.dumps(value) if not isinstance(value, tuple) else repr(value))


def _bbox(points: list[tuple[float, float]]) -> Box:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def _shape_box(shape: dict, where: str, json_rel: str, report: ProblemReport) -> Box | None:
    """The box of one face shape, or None (with a warning) for a shape that has no extent."""
    points = _points(shape, where)
    kind = shape.get("shape_type") or "polygon"  # LabelMe's own default
    kind = kind.strip().lower() if isinstance(kind, str) else str(kind)
    if kind in ("rectangle", "polygon", "mask"):  # mask: LabelMe stores its box corners
        if not points:
            raise BadLabels(f"{where}: {kind} without points")
        return _bbox(points)
    if kind == "circle":
        if len(points) != 2:
            raise BadLabels(f"{where}: circle needs 2 points (centre, edge), has {len(points)}")
        (cx, cy), (ex, ey) = points
        r = math.hypot(ex - cx, ey - cy)
        return cx - r, cy - r, cx + r, cy + r
    if len(points) >= 3:
        report.warning(json_rel, f"{where}: shape_type '{kind}' used as the box around its points")
        return _bbox(points)
    report.warning(
        json_rel,
        f"{where}: shape_type '{kind}' with {len(points)} point(s) has no box; skipped (this face stays unboxed)",
    )
    return None


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
        box = _shape_box(shape, f"{where} ('{label}')", json_rel, report)
        if box is not None:
            raw_boxes.append((where, box, is_ignore, shape.get("group_id")))
    transform = _frame(data, json_rel, image_rel, size, report)
    accepted = [
        (accept_box(transform(box), size, image_rel, json_rel, where, report), is_ignore, group, where)
        for where, box, is_ignore, group in raw_boxes
    ]
    faces = [(box, group, where) for box, is_ignore, group, where in accepted if not is_ignore]
    landmarks = _face_landmarks(faces, raw_points, transform, size, json_rel, report, left)
    return [box for box, _, _ in faces], [b for b, i, _, _ in accepted if i], landmarks


def _face_landmarks(faces, raw_points, transform, size: Size, json_rel: str, report: ProblemReport, left: str):
    """The five points of each face (None where it has none) from the point shapes (see the module docstring)."""
    if not raw_points:
        return []
    found: list[dict[int, tuple[float, float]]] = [{} for _ in faces]
    twice: set[int] = set()
    for where, index, shape in raw_points:
        try:
            points = _points(shape, where)
            if len(points) != 1:
                raise BadLabels(f"{where}: a landmark is one point, this shape has {len(points)}")
        except BadLabels as err:
            report.error(json_rel, f"{err}; landmark left out")
            continue
        x, y = transform((*points[0], *points[0]))[:2]
        group = shape.get("group_id")
        if group is not None:
            owners = [f for f, (_, g, _) in enumerate(faces) if g == group]
            why = f"group_id {_json_excerpt(group)}"
        else:
            owners = [f for f, (b, _, _) in enumerate(faces) if b[0] <= x <= b[2] and b[1] <= y <= b[3]]
            why = "no group_id, and it lies inside"
        if len(owners) != 1:
            report.error(
                json_rel,
                f"{where}: landmark belongs to no single face ({why} {len(owners)} face boxes); left out",
            )
            continue
        if index in found[owners[0]]:
            twice.add(owners[0])
        found[owners[0]][index] = (x, y)
    result: list[Landmarks | None] = []
    for f, (box, _, where) in enumerate(faces):
        if f in twice:
            report.error(
                json_rel, f"{where}: a landmark labelled twice on this face; the face is kept without landmarks"
            )
            result.append(None)
            continue
        points = [(*found[f][k], 2) if k in found[f] else (0.0, 0.0, 0) for k in range(len(KEYPOINT_NAMES))]
        result.append(accept_landmarks(points, box, size, left, json_rel, where, report) if found[f] else None)
    return result


def _frame(data: dict, json_rel: str, image_rel: str, size: Size, report: ProblemReport):
    """Maps boxes from the frame LabelMe recorded (imageWidth x imageHeight) to the image's."""
    jw, jh = data.get("imageWidth"), data.get("imageHeight")
    if jw is None and jh is None:
        return lambda box: box
    if not (finite(jw) and finite(jh) and jw > 0 and jh > 0):
        report.warning(
            json_rel, f"imageWidth/imageHeight ({_json_excerpt(jw)}, {_json_excerpt(jh)}) are not sizes; ignored"
        )
        return lambda box: box
    return frame((jw, jh), size, image_rel, json_rel, report, what="imageWidth x imageHeight")
