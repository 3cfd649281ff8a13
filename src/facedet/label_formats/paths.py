"""Where the importers may look: the dataset folder, the image paths label files name, the label
files and image headers they read (the file rules of [`facedet.label_formats.formats`][])."""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from facedet.images import IMAGE_EXTENSIONS, ImageError, dataset_files, link_allowed, read_header
from facedet.label_formats.formats import BadLabels, Outside, Size
from facedet.problems import ProblemReport

MAX_LABEL_BYTES = 30_000_000  # one label file (a LabelMe JSON may embed its image)
MAX_DATASET_FILE_BYTES = 300_000_000  # one file for a whole dataset (WIDER train: 8 MB; COCO, FDDB)
REFUSED_LINK = "a link that leads outside the dataset folder (refused, not read)"
WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:/|//)")  # C:/... or //server/share (after \ -> /)


def dataset_root(src: Path) -> Path:
    root = Path(os.path.normpath(Path(src).absolute()))
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    return root


def display_path(root: Path, path: Path) -> str:
    """A file's name in reports: relative to the dataset folder (POSIX) when inside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def option_path(root: Path, value: object, default: str | Path) -> Path:
    """A path option: absolute as given, relative to the dataset folder otherwise."""
    path = Path(str(value)) if value is not None else Path(default)
    return Path(os.path.normpath(path if path.is_absolute() else root / path))


def folder_inside(root: Path, folder: Path, option: str) -> str:
    """The folder as a POSIX path relative to root ('' for root itself); ValueError if outside."""
    rel = os.path.relpath(folder, root)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise ValueError(
            f"{option}: {folder} is not inside the dataset folder {root} (image file "
            f"names are relative to the dataset folder)"
        )
    if not folder.is_dir():
        raise FileNotFoundError(f"{option}: {folder} is not a folder")
    return "" if rel == "." else Path(rel).as_posix()


def resolve_image(root: Path, base: str, written: str) -> str:
    """The image named ``written`` in a label file, as a POSIX path relative to root.

    ``written`` is relative to the folder ``base`` (relative to root; backslashes read as ``/``)
    or absolute inside it. Raises Outside (nothing is opened) when it leaves ``base``, lexically
    or through a folder link; the file itself may be a link.
    """
    text = written.replace("\\", "/").strip()
    if not text:
        raise BadLabels("empty image path")
    if "\x00" in text:
        raise Outside(f"image path {written!r} is not a path (refused)")
    if text.startswith("/") or WINDOWS_ABSOLUTE.match(text):
        base_abs = root / base if base else root
        for prefix in (str(base_abs), os.path.realpath(base_abs)):
            if text == prefix or text.startswith(prefix.rstrip("/") + "/"):
                text = text[len(prefix) :].lstrip("/")
                break
        else:
            raise Outside(f"image path '{written}' is an absolute path outside the images folder (refused)")
    key = posixpath.normpath(posixpath.join(base, text) if base else text)
    inside = key.startswith(base + "/") if base else key not in (".", "..") and not key.startswith("../")
    if not inside:
        raise Outside(f"image path '{written}' points outside the images folder (refused)")
    try:
        parent = os.path.realpath(root / posixpath.dirname(key))
        real_base = os.path.realpath(root / base if base else root)
        through_link = os.path.commonpath([parent, real_base]) != real_base
    except (OSError, ValueError):
        through_link = True
    if through_link:
        raise Outside(f"image path '{written}' leads outside the images folder through a link (refused)")
    return key


def image_size(path: Path) -> Size:
    """Size after EXIF orientation, from the header (pixels are not decoded), with the limits of
    [`facedet.images.read_picture`][]; BadLabels if unusable."""
    if not path.is_file():
        raise BadLabels("image file not found")
    try:
        width, height, orientation = read_header(path)
    except ImageError as err:
        raise BadLabels(err.problem) from None
    return Size(width, height, orientation if orientation in range(1, 9) else 1)


class Sizes:
    """Image sizes by path relative to root, read once; unreadable images are reported once."""

    def __init__(self, root: Path, report: ProblemReport):
        self.root, self.report = root, report
        self._known: dict[str, Size | None] = {}

    def get(self, rel: str, label_file: str) -> Size | None:
        if rel not in self._known:
            try:
                if not link_allowed(self.root / rel, self.root):
                    raise BadLabels(REFUSED_LINK)
                self._known[rel] = image_size(self.root / rel)
            except BadLabels as err:
                self._known[rel] = None
                self.report.error(rel, f"image dropped: {err} (named in {label_file})")
        return self._known[rel]


def scan(
    root: Path, label_suffix: str, report: ProblemReport | None = None
) -> tuple[dict[str, Path], dict[str, Path | None]]:
    """Image files and label files (``label_suffix``, e.g. ".txt") under root, by POSIX path
    relative to root, walked as the collect stage walks ([`facedet.images.dataset_files`][]):
    links to folders are not followed; a link to a file that leads out of the dataset is refused and
    never opened. A refused image link is an error in ``report``. A refused label link stays among
    the label files with the path None, so that it pairs with its image like any label file and
    [`label_path`][] refuses it: an unreadable label file, whose image is set aside (its faces
    are unknown), never a missing one that would make its image a negative. The importer reports it."""
    images: dict[str, Path] = {}
    labels: dict[str, Path | None] = {}
    files, refused = dataset_files(root, IMAGE_EXTENSIONS + (label_suffix,))
    for path in files:
        rel = path.relative_to(root).as_posix()
        (images if path.suffix.lower() in IMAGE_EXTENSIONS else labels)[rel] = path
    for path in refused:
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            if report is not None:
                report.error(rel, REFUSED_LINK)
        else:
            labels[rel] = None
    return images, labels


def label_path(path: Path | None) -> Path:
    """A label file of [`scan`][] that may be opened; BadLabels for a refused link (None)."""
    if path is None:
        raise BadLabels(REFUSED_LINK)
    return path


def read_text(path: Path, limit: int = MAX_LABEL_BYTES) -> str:
    """A label file's text (UTF-8, BOM allowed); BadLabels if unreadable or over ``limit`` bytes
    (refused before anything is read)."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise BadLabels(f"file too large ({size} bytes; the limit is {limit})")
        return path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise BadLabels(f"cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise BadLabels("not UTF-8 text") from None


def really_inside(path: Path, root: Path) -> bool:
    """Whether path, with links resolved, is inside root (links resolved too)."""
    try:
        real, real_root = os.path.realpath(path), os.path.realpath(root)
        return os.path.commonpath([real, real_root]) == real_root
    except (OSError, ValueError):
        return False


def folder_really_inside(path: Path, root: Path) -> bool:
    """Whether the folder holding path, with links resolved, is inside root (links resolved too)."""
    return really_inside(path.parent, root)
