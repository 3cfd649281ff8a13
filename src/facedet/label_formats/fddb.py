"""Import FDDB (http://vis-www.cs.umass.edu/fddb/) in its official layout.

    src/FDDB-folds/FDDB-fold-01-ellipseList.txt ... FDDB-fold-10-ellipseList.txt
    src/originalPics/2002/08/11/big/img_591.jpg

Each fold file is a sequence of records: a line with the image path relative to ``originalPics``
without its extension, a line with the face count N, then N lines
``major_axis_radius minor_axis_radius angle center_x center_y 1`` (pixels; the angle in radians,
from the x axis to the major axis; the last number is a detection score, always 1).

Conventions:

- Box = the exact axis-aligned bounding box of the rotated ellipse, no correction. For an ellipse
  with semi-axes a (major), b (minor) rotated by θ, the points are
  (cx + a cosθ cos t - b sinθ sin t, cy + a sinθ cos t + b cosθ sin t); maximising over t gives
  half-width = sqrt(a² cos²θ + b² sin²θ) and half-height = sqrt(a² sin²θ + b² cos²θ).
  Example: a=20, b=10, θ=π/2 (an upright face) gives half-width 10 and half-height 20.
  FDDB ellipses cover the face from forehead to chin (not the hair); their boxes are taller and
  narrower than WIDER-style boxes of the same faces, which matters when mixing datasets or
  comparing IoU with a detector trained on another convention.
- Only images listed in the fold files are imported (``originalPics`` holds many more, unlabelled:
  they are not negatives). The image is ``<path>.jpg`` (other image extensions tried if absent).
- A malformed record is an error naming the file and line: that image is dropped and parsing
  resumes at the next image path line. An image listed twice keeps its first record (error).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from facedet.boxes import ellipse_box
from facedet.coco import Image
from facedet.images import IMAGE_EXTENSIONS
from facedet.label_formats.formats import Malformed, excerpt, sorted_images
from facedet.label_formats.listed import line_numbers, listed_images, read_lines, records
from facedet.label_formats.paths import Sizes, dataset_root, display_path, folder_inside, option_path, resolve_image
from facedet.problems import ProblemReport

log = logging.getLogger(__name__)

_FOLD = re.compile(r"FDDB-fold-(\d+)-ellipseList\.txt$")


def _ellipse_box(face: tuple[int, tuple[float, float, float, float, float]]) -> tuple[float, float, float, float]:
    """The box of an FDDB ellipse line ``(line, (a, b, angle, cx, cy))``: major semi-axis a, minor b,
    angle in radians, centre."""
    a, b, angle, cx, cy = face[1]
    return ellipse_box(cx, cy, a, b, angle)


def import_fddb(
    src: Path,
    report: ProblemReport,
    *,
    annotations: Path | str | list | None = None,
    images: Path | str | None = None,
    folds: list[int] | None = None,
) -> list[Image]:
    """The images listed in FDDB fold files, with the bounding boxes of their face ellipses.

    ``annotations``: an ellipse-list file, a folder of them, or a list of files (default
    ``src/FDDB-folds``, every ``FDDB-fold-XX-ellipseList.txt``). ``folds``: fold numbers to keep
    (default all). ``images``: the folder image paths are relative to (default
    ``src/originalPics``). Relative paths are relative to src.
    """
    root = dataset_root(src)
    files = _fold_files(root, annotations, folds)
    base = folder_inside(root, option_path(root, images, "originalPics"), "images")
    sizes = Sizes(root, report)
    result: dict[str, Image] = {}
    first: dict[str, str] = {}
    for path in files:
        name = display_path(root, path)
        lines = read_lines(path, name, report, "fold file", "its images are not imported")
        if lines is None:
            continue
        records = _records(lines, name, report)
        resolve = lambda written: _image(root, base, written)  # noqa: E731
        for image, _size, faces in listed_images(records, resolve, _ellipse_box, name, sizes, report, first):
            image.boxes = [box for box, _face in faces]
            result[image.file_name] = image
    log.info(
        "fddb: %d images, %d faces from %d fold file(s)",
        len(result),
        sum(len(i.boxes) for i in result.values()),
        len(files),
    )
    return sorted_images(result)


def _fold_files(root: Path, annotations, folds) -> list[Path]:
    if annotations is None or isinstance(annotations, (str, Path)):
        path = option_path(root, annotations, "FDDB-folds")
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if _FOLD.search(p.name))
            if not files:
                raise FileNotFoundError(f"annotations: no FDDB-fold-XX-ellipseList.txt in {path}")
        elif path.is_file():
            files = [path]
        else:
            raise FileNotFoundError(f"annotations: {path} does not exist")
    else:
        files = [option_path(root, p, "") for p in annotations]
        for path in files:
            if not path.is_file():
                raise FileNotFoundError(f"annotations: {path} is not a file")
    if folds is not None:
        try:
            wanted = {int(f) for f in ([folds] if isinstance(folds, (int, str)) else folds)}
        except (TypeError, ValueError):
            raise ValueError(f"folds: expected a list of fold numbers, got {folds!r}") from None
        files = [p for p in files if (m := _FOLD.search(p.name)) and int(m.group(1)) in wanted]
        if not files:
            raise FileNotFoundError(f"folds: no fold file for folds {sorted(wanted)}")
    return files


def _image(root: Path, base: str, written: str) -> str:
    """The image file of a written path (without extension): .jpg first, then other extensions."""
    key = resolve_image(root, base, written + ".jpg")  # refuses paths outside before anything is opened
    if (root / key).is_file():
        return key
    stem = key[: -len(".jpg")]
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        if (root / (stem + ext)).is_file():
            return stem + ext
    return key  # missing: reported when its size is read


def _records(lines: list[str], name: str, report: ProblemReport):
    """(path line number, image path, [(line number, (a, b, angle, cx, cy))]) for each good record."""
    n = len(lines)

    def is_count(k: int) -> bool:
        return k < n and re.fullmatch(r"\d+", lines[k].strip()) is not None

    def is_path(k: int) -> bool:  # one token, not a number, with a folder or followed by a count
        text = lines[k].strip()
        if not text or len(text.split()) != 1 or re.fullmatch(r"[-+.\deE]+", text):
            return False
        return "/" in text or "\\" in text or is_count(k + 1)

    def ellipses(i: int) -> tuple[list, int]:
        if not is_count(i):
            got = excerpt(lines[i].strip()) if i < n else "the end of the file"
            raise Malformed(min(i + 1, n), f"face count '{got}' is not a whole number")
        count_line, count = i + 1, int(lines[i])
        i += 1
        faces = []
        for k in range(count):
            if i >= n or not lines[i].strip() or is_path(i):
                raise Malformed(
                    min(i + 1, n), f"the count on line {count_line} is {count} but {k} ellipse line(s) follow"
                )
            faces.append((i + 1, _ellipse(lines[i], i + 1)))
            i += 1
        if i < n and lines[i].strip() and not is_path(i):
            raise Malformed(i + 1, f"more ellipse lines than the count ({count}) on line {count_line}")
        return faces, i

    return records(lines, is_path, ellipses, name, report)


def _ellipse(text: str, line: int) -> tuple[float, float, float, float, float]:
    values = line_numbers(text, line, (5, 6), "ellipse line", "an ellipse line has 6 numbers (a b angle cx cy 1)")
    a, b, angle, cx, cy = values[:5]
    if a <= 0 or b <= 0:
        raise Malformed(line, f"ellipse radii must be positive, got {a:g} and {b:g}")
    return a, b, angle, cx, cy
