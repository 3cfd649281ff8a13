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
  files that are links (a DVC cache of type symlink) are images of the dataset. If the named image does not exist, the image with the JSON's stem next to
  it, then the only image with that stem anywhere, is used (warning). An absolute Windows path
  (``C:\\...``, written by LabelMe when images and labels were on different drives) goes straight
  to that fallback.
- Boxes are in the image's pixels after EXIF orientation, which is how LabelMe shows images.
- A label file that cannot be read (not JSON, not LabelMe, malformed shapes, non-numeric
  coordinates) is dropped and so is its image: its faces are unknown, and keeping it as a negative
  would teach the detector that its faces are background.
- ``imageData`` (the whole image in base64) is never decoded.
"""

from __future__ import annotations

import json
import logging
import math
import os
import posixpath
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image as PILImage

from facedet.coco import Image
from facedet.images import IMAGE_EXTENSIONS
from facedet.problems import ProblemReport

log = logging.getLogger(__name__)


_ORIENTATION_TAG = 0x0112
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:/|//)")  # C:/... or //server/share (after \ -> /)
_EDGE_TOLERANCE = 1e-3  # px: overshoot this small is float noise, clipped without a warning
_SCALE_TOLERANCE = 0.01  # relative difference between the x and y factors of a "uniform" scale

Box = tuple[float, float, float, float]


class _Bad(ValueError):
    """A label file that cannot be used; the message says why."""


@dataclass(frozen=True)
class _Size:
    width: int  # after EXIF orientation
    height: int
    orientation: int  # EXIF orientation, 1 (none) to 8


def import_folder(root: Path, report: ProblemReport, labels: Sequence[str] = ("face",)) -> list[Image]:
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

    image_paths, json_paths = _scan(root)
    sizes: dict[str, _Size] = {}
    for rel, path in image_paths.items():
        try:
            sizes[rel] = _image_size(path)
        except _Bad as err:
            report.error(rel, f"image dropped: {err}")

    state = _State(root, _Index(image_paths), sizes, wanted, report)
    for json_rel in sorted(json_paths):
        try:
            state.import_label_file(json_rel, json_paths[json_rel])
        except Exception as err:  # noqa: BLE001 - a bug must not lose the whole import; say so
            log.exception("labelme: unexpected failure on %s", json_rel)
            lost = sorted(image for image, by in state.claimed.items() if by == json_rel)
            state.dropped.update(lost)
            report.error(json_rel, f"label file dropped: unexpected failure ({type(err).__name__}: {err})"
                         + "".join(f"; its image {image} is dropped too" for image in lost))

    if state.ignored:
        log.info("labelme: ignored shapes with other labels: %s", dict(sorted(state.ignored.items())))
    return [Image(rel, size.width, size.height, state.boxes.get(rel, []))
            for rel, size in sorted(sizes.items()) if rel not in state.dropped]


@dataclass
class _State:
    """One import: what is known so far about the images, filled in one label file at a time."""

    root: Path
    index: "_Index"
    sizes: dict[str, _Size]
    wanted: set[str]
    report: ProblemReport
    boxes: dict[str, list[Box]] = field(default_factory=dict)
    claimed: dict[str, str] = field(default_factory=dict)  # image -> the label file that claimed it
    dropped: set[str] = field(default_factory=set)  # images whose faces are unknown
    ignored: Counter = field(default_factory=Counter)  # shapes with other labels, by label

    def import_label_file(self, json_rel: str, path: Path) -> None:
        report = self.report
        json_dir = posixpath.dirname(json_rel)
        try:
            data = _load(path)
            image_rel, note = _pair(data.get("imagePath"), json_rel, self.root, self.index)
        except _Bad as err:
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
            report.error(json_rel, f"label file dropped: label file's image is missing ({note})"
                         + ("; the JSON embeds imageData, from which the image could be restored"
                            if embedded else ""))
            return
        if image_rel in self.claimed:
            report.error(json_rel, f"label file ignored: {image_rel} is already labelled by "
                                   f"{self.claimed[image_rel]}")
            return
        self.claimed[image_rel] = json_rel
        if note:
            report.warning(json_rel, note)
        if image_rel not in self.sizes:
            return  # an unreadable image, already reported
        try:
            self.boxes[image_rel] = _boxes(data, json_rel, image_rel, self.sizes[image_rel], self.wanted,
                                           self.ignored, report)
        except _Bad as err:
            self.dropped.add(image_rel)
            report.error(json_rel, f"label file dropped: {err}; its image {image_rel} is dropped too "
                                   f"(its faces are unknown)")


# --- finding files ---------------------------------------------------------------------------


def _scan(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Image and JSON files under root by POSIX path relative to root.

    Like the collect stage (``Path.rglob``), links to folders are not followed; links to files are
    (a DVC cache may link every image).
    """
    images, jsons = {}, {}
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        rel_folder = Path(folder).relative_to(root).as_posix()
        for name in files:
            rel = name if rel_folder == "." else f"{rel_folder}/{name}"
            suffix = os.path.splitext(name)[1].lower()
            if suffix in IMAGE_EXTENSIONS:
                images[rel] = Path(folder, name)
            elif suffix == ".json":
                jsons[rel] = Path(folder, name)
    return images, jsons


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


class _Outside(_Bad):
    """imagePath leads out of the dataset folder."""


def _pair(image_path: object, json_rel: str, root: Path, index: _Index) -> tuple[str | None, str]:
    """(image, note): the image a label file is about, or (None, why not).

    The note is a warning to report when the image was found some other way than by imagePath.
    Raises _Outside when imagePath leads out of the dataset folder.
    """
    json_dir, stem = posixpath.dirname(json_rel), _stem(json_rel)
    if image_path is not None and not isinstance(image_path, str):
        raise _Bad(f"imagePath is not a string ({type(image_path).__name__})")
    written = (image_path or "").replace("\\", "/").strip()
    if not written:
        why = "no imagePath"
    elif _WINDOWS_ABSOLUTE.match(written):
        why = f"imagePath '{image_path}' is an absolute Windows path"
    else:
        key = _lexical(written, json_dir, root)
        if key is not None and key in index.images:
            return key, ""  # an image found by the walk: nothing else is ever read
        if key is None or not _really_inside(root / key, root):
            raise _Outside(f"imagePath '{image_path}' points outside the dataset folder (refused)")
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
                written = written[len(base):].lstrip("/") or "."
                break
        else:
            return None
        key = posixpath.normpath(written)
    else:
        key = posixpath.normpath(posixpath.join(json_dir, written))
    return None if key == ".." or key.startswith("../") else key


def _really_inside(path: Path, root: Path) -> bool:
    """Whether path, with links resolved, is inside root (links resolved too)."""
    try:
        real, real_root = os.path.realpath(path), os.path.realpath(root)
        return os.path.commonpath([real, real_root]) == real_root
    except (OSError, ValueError):
        return False


# --- reading files ---------------------------------------------------------------------------


def _image_size(path: Path) -> _Size:
    """Size after EXIF orientation, from the header (pixels are not decoded)."""
    try:
        if path.stat().st_size == 0:
            raise _Bad("empty file (0 bytes)")
        with PILImage.open(path) as image:
            width, height = image.size
            try:
                orientation = int(image.getexif().get(_ORIENTATION_TAG, 1))
            except Exception:  # a broken EXIF block: the pixels are still usable
                orientation = 1
    except _Bad:
        raise
    except PILImage.UnidentifiedImageError:
        raise _Bad("not an image (unrecognised content)") from None
    except Exception as err:  # noqa: BLE001 - any decoder failure means the same: unusable
        raise _Bad(f"unreadable image ({type(err).__name__}: {err})") from None
    if orientation not in range(1, 9):
        orientation = 1
    if orientation >= 5:
        width, height = height, width
    return _Size(width, height, orientation)


def _load(path: Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise _Bad(f"cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise _Bad("not a LabelMe file (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise _Bad(f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except (ValueError, RecursionError) as err:  # e.g. a 5000-digit number, nesting 100000 deep
        raise _Bad(f"not usable JSON ({type(err).__name__}: {str(err)[:80]})") from None
    if not isinstance(data, dict):
        raise _Bad(f"not a LabelMe file (the JSON is a {type(data).__name__}, not an object)")
    if "shapes" not in data:
        raise _Bad("not a LabelMe file (no 'shapes' key)")
    if not isinstance(data["shapes"], list):
        raise _Bad(f"'shapes' is not a list ({type(data['shapes']).__name__})")
    return data


def _number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _points(shape: dict, where: str) -> list[tuple[float, float]]:
    raw = shape.get("points")
    if not isinstance(raw, list):
        raise _Bad(f"{where}: 'points' is not a list")
    points = []
    for point in raw:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise _Bad(f"{where}: point {_short(point)} is not an [x, y] pair")
        if not (_number(point[0]) and _number(point[1])):
            raise _Bad(f"{where}: point {_short(point)} has a coordinate that is not a number")
        points.append((float(point[0]), float(point[1])))
    return points


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, tuple) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
            raise _Bad(f"{where}: {kind} without points")
        return _bbox(points)
    if kind == "circle":
        if len(points) != 2:
            raise _Bad(f"{where}: circle needs 2 points (centre, edge), has {len(points)}")
        (cx, cy), (ex, ey) = points
        r = math.hypot(ex - cx, ey - cy)
        return cx - r, cy - r, cx + r, cy + r
    if len(points) >= 3:
        report.warning(json_rel, f"{where}: shape_type '{kind}' used as the box around its points")
        return _bbox(points)
    report.warning(json_rel, f"{where}: shape_type '{kind}' with {len(points)} point(s) has no "
                             f"box; skipped (this face stays unboxed)")
    return None


def _boxes(data: dict, json_rel: str, image_rel: str, size: _Size, wanted: set[str],
           ignored: Counter, report: ProblemReport) -> list[Box]:
    """The face boxes of a LabelMe file, in the image's pixels, inside it."""
    raw_boxes = []
    for i, shape in enumerate(data["shapes"]):
        where = f"shape {i}"
        if not isinstance(shape, dict):
            raise _Bad(f"{where} is not an object")
        label = shape.get("label")
        if not isinstance(label, str):
            raise _Bad(f"{where} has no label")
        if label.strip().lower() not in wanted:
            ignored[label.strip()] += 1
            continue
        box = _shape_box(shape, f"{where} ('{label}')", json_rel, report)
        if box is not None:
            raw_boxes.append((where, box))
    transform = _frame(data, json_rel, image_rel, size, report)
    boxes = []
    for where, box in raw_boxes:
        box = transform(box)
        clipped = _clip(box, size.width, size.height)
        if clipped is None:
            report.error(json_rel, f"{where}: box {_fmt(box)} is outside {image_rel} "
                                   f"({size.width}x{size.height}) or empty; box rejected")
            continue
        if max(abs(a - b) for a, b in zip(box, clipped)) > _EDGE_TOLERANCE:
            report.warning(json_rel, f"{where}: box {_fmt(box)} crosses the border of {image_rel} "
                                     f"({size.width}x{size.height}); clipped to {_fmt(clipped)}")
        boxes.append(clipped)
    return boxes


def _fmt(box: Box) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box) + ")"


def _clip(box: Box, width: int, height: int) -> Box | None:
    x1, y1, x2, y2 = box
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return x1, y1, x2, y2


def _frame(data: dict, json_rel: str, image_rel: str, size: _Size, report: ProblemReport):
    """Maps boxes from the frame LabelMe recorded (imageWidth x imageHeight) to the image's."""
    identity = lambda box: box  # noqa: E731
    jw, jh = data.get("imageWidth"), data.get("imageHeight")
    if jw is None and jh is None:
        return identity
    if not (_number(jw) and _number(jh) and jw > 0 and jh > 0):
        report.warning(json_rel, f"imageWidth/imageHeight ({_short(jw)}, {_short(jh)}) are not "
                                 f"sizes; ignored")
        return identity
    w, h = size.width, size.height
    if (jw, jh) == (w, h):
        return identity
    said = f"imageWidth x imageHeight {jw:g}x{jh:g} but {image_rel} is {w}x{h}"
    if size.orientation >= 5 and (jw, jh) == (h, w):
        report.warning(json_rel, f"{said}: labelled on the image as stored, without its EXIF "
                                 f"rotation (orientation {size.orientation}); boxes rotated to match")
        return lambda box: _bbox([_orient(x, y, size) for x, y in ((box[0], box[1]), (box[2], box[3]))])
    sx, sy = w / jw, h / jh
    if abs(sx - sy) <= _SCALE_TOLERANCE * max(sx, sy):
        report.warning(json_rel, f"{said}: labelled on a resized copy; boxes scaled by {sx:.4g}")
        return lambda box: (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    report.warning(json_rel, f"{said}; boxes kept as they are (real size used)")
    return identity


def _orient(x: float, y: float, size: _Size) -> tuple[float, float]:
    """A point of the stored image (before EXIF orientation 5-8) on the displayed image."""
    sw, sh = size.height, size.width  # stored width and height: transposed for 5..8
    return {5: (y, x), 6: (sh - y, x), 7: (sh - y, sw - x), 8: (y, sw - x)}[size.orientation]
