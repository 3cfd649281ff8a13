"""Import WIDER FACE (http://shuoyang1213.me/WIDERFACE/) in its official layout.

    src/wider_face_split/wider_face_train_bbx_gt.txt   (or _val_)
    src/WIDER_train/images/<event>/<name>.jpg           (or WIDER_val)

The ground-truth file is a sequence of records: a line with the image path (relative to the
images folder), a line with the face count N, then N lines
``x1 y1 w h blur expression illumination invalid occlusion pose`` (pixels, 0-based; flags are
small integers: blur 0/1/2 = clear/normal/heavy, occlusion 0/1/2 = none/partial/heavy, invalid 1 =
the annotators could not label it). When N is 0 the next line is a dummy ``0 0 0 0 0 0 0 0 0 0``.

Conventions:

- Only images listed in the file are imported (the file is the dataset; an unlisted image is not
  a negative). A zero-face record is a negative.
- A face becomes an ignore region (``Image.ignore``, COCO ``iscrowd=1``: neither a face to find
  nor background) when it is flagged invalid, when its shorter side is below ``min_size`` pixels,
  when its blur flag is above ``max_blur`` or its occlusion flag above ``max_occlusion``. The
  counts of blur/occlusion flags are logged (info).
- The box is (x1, y1, x1 + w, y1 + h). WIDER has a few boxes with w or h = 0: rejected (error).
- A malformed record (a count that is not a whole number, a face line that is not 4 or 10
  numbers, fewer or more face lines than the count) is an error naming the file and line: that
  image is dropped and parsing resumes at the next image path line.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections import Counter
from pathlib import Path

from facedet.coco import Image
from facedet.images import IMAGE_EXTENSIONS
from facedet.label_formats.formats import Malformed, excerpt, number_option, sorted_images
from facedet.label_formats.listed import line_numbers, listed_images, read_lines, records, xywh_box
from facedet.label_formats.paths import Sizes, dataset_root, display_path, folder_inside, option_path, resolve_image
from facedet.problems import ProblemReport

log = logging.getLogger(__name__)

_SPLIT_FILE = re.compile(r"wider_face_(train|val)_bbx_gt", re.IGNORECASE)


def import_wider(
    src: Path,
    report: ProblemReport,
    *,
    annotations: Path | str | None = None,
    images: Path | str | None = None,
    min_size: float = 10,
    split: str | None = None,
    max_blur: int = 2,
    max_occlusion: int = 2,
) -> list[Image]:
    """The images listed in a WIDER FACE ground-truth file, with faces and ignore regions.

    ``annotations``: the ``wider_face_*_bbx_gt.txt`` file (default: under
    ``src/wider_face_split``, the one of ``split``, "train" or "val"; with split unset, whichever
    one exists). ``images``: the folder the paths in it are relative to (default
    ``src/WIDER_<split>/images``, the split read from the annotation file's name). Relative paths
    are relative to src. ``min_size``, ``max_blur``, ``max_occlusion``: see the module docstring.
    """
    root = dataset_root(src)
    min_size = number_option(min_size, "min_size")
    max_blur = int(number_option(max_blur, "max_blur"))
    max_occlusion = int(number_option(max_occlusion, "max_occlusion"))
    ann_path, images_dir = _locate(root, annotations, images, split)
    base = folder_inside(root, images_dir, "images")
    ann_name = display_path(root, ann_path)
    lines = read_lines(ann_path, ann_name, report)
    if lines is None:
        return []
    result: dict[str, Image] = {}
    stats: Counter = Counter()
    for image, _size, faces in listed_images(
        _records(lines, ann_name, report),
        lambda written: resolve_image(root, base, written),
        xywh_box,
        ann_name,
        Sizes(root, report),
        report,
        {},
    ):
        for box, (_line, (_x, _y, w, h), flags) in faces:
            reasons = _ignore_reasons(w, h, flags, min_size, max_blur, max_occlusion)
            (image.ignore if reasons else image.boxes).append(box)
            stats.update([f"blur={flags.get('blur', 0)}", f"occlusion={flags.get('occlusion', 0)}"])
            stats.update(f"ignored:{reason}" for reason in reasons)
        result[image.file_name] = image
    log.info(
        "wider: %d images, %d faces, %d ignore regions; flags %s",
        len(result),
        sum(len(i.boxes) for i in result.values()),
        sum(len(i.ignore) for i in result.values()),
        dict(sorted(stats.items())),
    )
    return sorted_images(result)


def _ignore_reasons(
    w: float, h: float, flags: dict[str, int], min_size: float, max_blur: int, max_occlusion: int
) -> list[str]:
    """Why a face is an ignore region (none: a face to find)."""
    checks = (
        ("invalid", flags.get("invalid", 0) == 1),
        ("small", min(w, h) < min_size),
        ("blur", flags.get("blur", 0) > max_blur),
        ("occlusion", flags.get("occlusion", 0) > max_occlusion),
    )
    return [reason for reason, hit in checks if hit]


def _locate(root: Path, annotations, images, split) -> tuple[Path, Path]:
    if split is not None and str(split) not in ("train", "val"):
        raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
    if annotations is None:
        splits = [str(split)] if split is not None else ["train", "val"]
        found = [(s, root / "wider_face_split" / f"wider_face_{s}_bbx_gt.txt") for s in splits]
        found = [(s, p) for s, p in found if p.is_file()]
        if not found:
            raise FileNotFoundError(
                f"annotations: no wider_face_{'|'.join(splits)}_bbx_gt.txt in {root / 'wider_face_split'}"
            )
        if len(found) > 1:
            raise ValueError(
                "split: both wider_face_train_bbx_gt.txt and wider_face_val_bbx_gt.txt "
                "exist; choose split=train or split=val (or give annotations)"
            )
        split, ann_path = found[0]
    else:
        ann_path = option_path(root, annotations, "")
        if not ann_path.is_file():
            raise FileNotFoundError(f"annotations: {ann_path} is not a file")
        if split is None:
            match = _SPLIT_FILE.search(ann_path.name)
            split = match.group(1).lower() if match else None
    if images is None:
        if split is None:
            raise ValueError(f"images: cannot tell the split from {ann_path.name}; give images")
        images = f"WIDER_{split}/images"
    return ann_path, option_path(root, images, "")


def _is_path(line: str) -> bool:
    """An image path line: ends with an image extension and does not start with a number."""
    text = line.strip()
    if posixpath.splitext(text)[1].lower() not in IMAGE_EXTENSIONS:
        return False
    try:
        float(text.split()[0])
    except ValueError:
        return True
    return False


_FLAGS = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


def _records(lines: list[str], ann_name: str, report: ProblemReport):
    """(path line number, image path, [(line number, (x, y, w, h), flags)]) for each good record."""
    return records(lines, lambda k: _is_path(lines[k]), lambda k: _faces(lines, k), ann_name, report)


def _faces(lines: list[str], i: int) -> tuple[list, int]:
    """The faces of the record whose count is on line ``i`` (0-based), and the index after them."""
    n = len(lines)
    if i >= n:
        raise Malformed(i, "image path without a face count at the end of the file")
    count_text, count_line = lines[i].strip(), i + 1
    if not re.fullmatch(r"\d+", count_text):
        raise Malformed(count_line, f"face count '{excerpt(count_text)}' is not a whole number")
    count = int(count_text)
    i += 1
    faces = []
    for k in range(count):
        if i >= n or _is_path(lines[i]) or not lines[i].strip():
            raise Malformed(
                i + 1 if i < n else n, f"the count on line {count_line} is {count} but {k} face line(s) follow"
            )
        faces.append(_face(lines[i], i + 1))
        i += 1
    if count == 0 and i < n and lines[i].strip() and not _is_path(lines[i]):
        line = i + 1
        values = _face(lines[i], line)[1]
        if any(values):
            raise Malformed(line, f"the count on line {count_line} is 0 but this line holds a face")
        i += 1  # the dummy line of a zero-face record
    if i < n and lines[i].strip() and not _is_path(lines[i]):
        raise Malformed(i + 1, f"more face lines than the count ({count}) on line {count_line}")
    return faces, i


def _face(text: str, line: int) -> tuple[int, tuple[float, float, float, float], dict[str, int]]:
    values = line_numbers(text, line, (4, 10), "face line", "a face line has 10 numbers (x1 y1 w h and 6 flags)")
    flags = {name: int(v) for name, v in zip(_FLAGS, values[4:])}
    x, y, w, h = values[:4]
    return line, (x, y, w, h), flags
