"""The rules every label importer shares (the registry of importers is [`facedet.label_formats.registry`][]).

Every importer has the signature ``(src: Path, report: ProblemReport, **options) ->
list[Image]`` and follows the conventions of [`facedet.label_formats.labelme`][]:

- ``src`` is the dataset folder. ``Image.file_name`` is the image's path relative to it, POSIX
  style (the key the collect stage's manifest uses). Path options (``annotations``, ``images``) may
  be relative, and then they are relative to ``src``; an ``images`` folder must be inside ``src``.
- ``width``/``height`` are the real image's, after EXIF orientation, read from its header (the
  pixels are not decoded). An image that cannot be read is reported (error) and dropped.
- Boxes are (x1, y1, x2, y2) in pixels, 0-based, continuous (a box covering the whole W x H image
  is (0, 0, W, H)). A box partly outside its image is clipped (warning); a box entirely outside or
  with no area is rejected (error). ``Image.ignore`` holds ignore regions (COCO ``iscrowd=1``).
- An image path written in a label file can only name a file of the images folder: a path that
  leaves it (``../``, an absolute path elsewhere, a folder link that leads out) is refused with an
  error and nothing there is opened. Image files that are links (a DVC cache) are fine.
- A label file that is a link leading out of the dataset is refused and never opened (see
  [`scan`][facedet.label_formats.paths.scan]); it counts as a label file that cannot be read, so its image is set aside.
- One bad file or entry never stops an import: it is reported and the rest goes on. A label entry
  that cannot be read drops its image too (its faces are unknown; keeping it as a negative would
  teach the detector that its faces are background).

This module holds the rules on boxes, landmarks and options; [`facedet.label_formats.paths`][] those on
files and paths. The importers import them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from facedet.boxes import Box, clip_box, has_area
from facedet.coco import NUM_KEYPOINTS, Image, Landmarks, swap_sides
from facedet.problems import ProblemReport, excerpt  # noqa: F401 (the importers' excerpt)

EDGE_TOLERANCE = 1e-3  # px: overshoot this small is float noise, clipped without a warning
_SCALE_TOLERANCE = 0.01  # relative difference between the x and y factors of a "uniform" scale

# --- shared rules ------------------------------------------------------------------------------


class BadLabels(ValueError):
    """A label file or entry that cannot be used; the message says why."""


class Outside(BadLabels):
    """An image path written in a label file leads out of the images folder."""


class Malformed(BadLabels):
    """A malformed record of a line-based label file; ``line`` is where (1-based)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Size:
    width: int  # after EXIF orientation
    height: int
    orientation: int = 1  # EXIF orientation, 1 (none) to 8


def names_option(value: object, option: str) -> set[str]:
    """A list of names (or one name) as a set of lower-case, stripped names."""
    if isinstance(value, str):
        value = [value]
    try:
        names = {str(name).strip().lower() for name in value}
    except TypeError:
        raise ValueError(f"{option}: expected a list of names, got {value!r}") from None
    if not names:
        raise ValueError(f"{option}: no names given")
    return names


def number_option(value: object, option: str, minimum: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{option}: expected a number, got {value!r}") from None
    if not math.isfinite(number) or number < minimum:
        raise ValueError(f"{option}: expected a number >= {minimum:g}, got {value!r}")
    return number


def finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def parse_float(text: str) -> float:
    """A finite float from text; BadLabels otherwise."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise BadLabels(f"'{excerpt(text)}' is not a number") from None
    if not math.isfinite(value):
        raise BadLabels(f"'{excerpt(text)}' is not a finite number")
    return value


def fmt(box: Box) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in box) + ")"


def clip(box: Box, width: int, height: int) -> Box | None:
    """The box clipped to the image, or None when nothing of it is left inside."""
    clipped = clip_box(box, width, height)
    return clipped if has_area(clipped) else None


def accept_box(box: Box, size: Size, image_rel: str, label_file: str, where: str, report: ProblemReport) -> Box:
    """The one box check of every importer: the box clipped to the image (warning when it crossed
    the border). BadLabels (the caller sets the image aside: its faces are unknown) for a box with
    a coordinate that is not a finite number, that lies more than the image's size beyond its
    border (absurd: wrong units?), with no area, or entirely outside the image."""
    if not all(finite(v) for v in box):
        raise BadLabels(f"{where}: box {fmt(box)} has a coordinate that is not a finite number")
    reach = max(size.width, size.height)
    if (
        min(box) < -reach
        or box[0] > size.width + reach
        or box[2] > size.width + reach
        or box[1] > size.height + reach
        or box[3] > size.height + reach
    ):
        raise BadLabels(
            f"{where}: box {fmt(box)} is far outside {image_rel} ({size.width}x{size.height}): wrong units?"
        )
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise BadLabels(f"{where}: box {fmt(box)} has no area")
    clipped = clip(box, size.width, size.height)
    if clipped is None:
        raise BadLabels(f"{where}: box {fmt(box)} is outside {image_rel} ({size.width}x{size.height})")
    if max(abs(a - b) for a, b in zip(box, clipped)) > EDGE_TOLERANCE:
        report.warning(
            label_file,
            f"{where}: box {fmt(box)} crosses the border of {image_rel} "
            f"({size.width}x{size.height}); clipped to {fmt(clipped)}",
        )
    return clipped


def frame(
    declared: tuple[object, object],
    size: Size,
    image_rel: str,
    label_file: str,
    report: ProblemReport,
    what: str = "declared size",
) -> Callable[[Box], Box]:
    """Maps boxes from the size a label file declares to the real image's (after EXIF orientation).

    Same size: unchanged. The stored size of an image with EXIF orientation 5-8: rotated onto the
    displayed image (warning). A uniformly resized copy: scaled (warning). Otherwise unchanged
    (warning). A missing or zero declared size (COCO/VOC writers often leave 0): unchanged.
    ``what`` names the declared size in the warnings.
    """
    identity = lambda box: box  # noqa: E731
    jw, jh = declared
    if not (finite(jw) and finite(jh) and jw > 0 and jh > 0):
        return identity
    w, h = size.width, size.height
    if (jw, jh) == (w, h):
        return identity
    said = f"{what} {jw:g}x{jh:g} but {image_rel} is {w}x{h}"
    if size.orientation >= 5 and (jw, jh) == (h, w):
        report.warning(
            label_file,
            f"{said}: labelled on the image as stored, without its EXIF "
            f"rotation (orientation {size.orientation}); boxes rotated to match",
        )

        def rotate(box: Box) -> Box:
            points = [_orient(x, y, size) for x, y in ((box[0], box[1]), (box[2], box[3]))]
            xs, ys = [x for x, _ in points], [y for _, y in points]
            return min(xs), min(ys), max(xs), max(ys)

        return rotate
    sx, sy = w / jw, h / jh
    if abs(sx - sy) <= _SCALE_TOLERANCE * max(sx, sy):
        report.warning(label_file, f"{said}: labelled on a resized copy; boxes scaled by {sx:.4g}")
        return lambda box: (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    report.warning(label_file, f"{said}; boxes kept as they are (real size used)")
    return identity


def _orient(x: float, y: float, size: Size) -> tuple[float, float]:
    """A point of the stored image (before EXIF orientation 5-8) on the displayed image."""
    sw, sh = size.height, size.width  # stored width and height: transposed for 5..8
    return {5: (y, x), 6: (sh - y, x), 7: (sh - y, sw - x), 8: (y, sw - x)}[size.orientation]


def sorted_images(images: dict[str, Image]) -> list[Image]:
    return [images[name] for name in sorted(images)]


# --- landmarks -------------------------------------------------------------------------------------

LEFT_CONVENTIONS = ("image", "person")


def left_option(value: object) -> str:
    """The ``left`` option of the importers that read landmarks: whose left a file's "left" is."""
    if value not in LEFT_CONVENTIONS:
        raise ValueError(f"left: expected one of {LEFT_CONVENTIONS} (whose left 'left_eye' means), got {value!r}")
    return str(value)


def accept_landmarks(
    points: list, box: Box, size: Size, left: str, label_file: str, where: str, report: ProblemReport
) -> Landmarks | None:
    """The one landmark check of every importer. ``points``: five ``(x, y, v)`` in the image's pixels
    (v: 0 not labelled, 1 hidden, 2 visible; x, y ignored where v is 0), in the file's order of
    `facedet.coco.KEYPOINT_NAMES`, "left" meaning ``left`` ("image" or "person": then swapped).

    A face keeps its box whatever its points are: malformed points (not five, not numbers, a
    visibility other than 0/1/2, a point far outside its face box: wrong units or the wrong face?)
    drop the face's landmarks with one error naming the file and the problem. A labelled point just
    outside the image is masked (warning). None when no point is labelled."""
    try:
        if len(points) != NUM_KEYPOINTS:
            raise BadLabels(f"{len(points)} points, expected {NUM_KEYPOINTS}")
        checked = []
        x1, y1, x2, y2 = box
        margin_x, margin_y = x2 - x1, y2 - y1
        for k, (x, y, v) in enumerate(points):
            if not (finite(v) and v in (0, 1, 2)):
                raise BadLabels(f"point {k + 1}: visibility {excerpt(v)} is not 0, 1 or 2")
            if v == 0:
                checked.append((0.0, 0.0, 0))
                continue
            if not (finite(x) and finite(y)):
                raise BadLabels(f"point {k + 1}: ({excerpt(x)}, {excerpt(y)}) is not a pair of numbers")
            if not (x1 - margin_x <= x <= x2 + margin_x and y1 - margin_y <= y <= y2 + margin_y):
                raise BadLabels(f"point {k + 1} ({x:.6g}, {y:.6g}) is far outside its face box {fmt(box)}")
            if not (0 <= x <= size.width and 0 <= y <= size.height):
                report.warning(label_file, f"{where}: landmark point {k + 1} lies outside the image; masked")
                checked.append((0.0, 0.0, 0))
                continue
            checked.append((float(x), float(y), int(v)))
    except BadLabels as err:
        report.error(label_file, f"{where}: landmarks dropped ({err}); the face is kept without them")
        return None
    except (TypeError, ValueError):
        report.error(
            label_file, f"{where}: landmarks dropped (not five (x, y, v) points); the face is kept without them"
        )
        return None
    if not any(v for _, _, v in checked):
        return None
    result = tuple(checked)
    return swap_sides(result) if left == "person" else result
