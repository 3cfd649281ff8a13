"""What the formats whose annotation files list their images (WIDER FACE, RetinaFace, FDDB) share.

Such a file is a sequence of records: an image path, then one line per face. Each format parses
its own records; [`listed_images`][] turns them into images by the rules of
[`facedet.label_formats.formats`][]: a path that leaves the images folder is refused, an image listed
twice keeps its first record, an unreadable image is dropped, and a box that cannot be used sets
its image aside (its faces are unknown). Each problem is one error naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from facedet.boxes import Box
from facedet.coco import Image
from facedet.label_formats.formats import BadLabels, Malformed, Size, accept_box, excerpt, parse_float
from facedet.label_formats.paths import MAX_DATASET_FILE_BYTES, Sizes, read_text
from facedet.problems import ProblemReport

Face = TypeVar("Face", bound=tuple)  # a face of a record: (line number, what the line says, ...)


def read_lines(
    path: Path, name: str, report: ProblemReport, what: str = "annotation file", consequence: str = "nothing imported"
) -> list[str] | None:
    """The lines of an annotation file, or None after one error naming ``name``: ``what`` is
    unreadable, and the ``consequence``."""
    try:
        return read_text(path, limit=MAX_DATASET_FILE_BYTES).splitlines()
    except BadLabels as err:
        report.error(name, f"{what} unreadable ({err}); {consequence}")
        return None


def records(
    lines: list[str],
    is_path: Callable[[int], bool],
    read_faces: Callable[[int], tuple[list, int]],
    name: str,
    report: ProblemReport,
) -> Iterator[tuple[int, str, list]]:
    """(path line number, image path as written, faces) per good record of a file whose records are
    an image path line and the lines of its faces.

    ``is_path(k)``: whether line ``k`` (0-based) is an image path. ``read_faces(k)``: the faces of
    the record whose lines start at ``k``, and the index after them; Malformed for a malformed
    record, whose image is dropped (one error naming the line) and reading resumes at the next
    image path line, as after a line that should have been one.
    """
    i, n = 0, len(lines)

    def next_path(k: int) -> int:
        while k < n and not is_path(k):
            k += 1
        return k

    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        if not is_path(i):
            got = excerpt(lines[i].strip())
            report.error(name, f"line {i + 1}: expected an image path, got '{got}'; skipped to the next image path")
            i = next_path(i + 1)
            continue
        path_line, written = i + 1, lines[i].strip()
        try:
            faces, i = read_faces(i + 1)
        except Malformed as err:
            report.error(name, f"line {err.line}: {err}; image {written} (line {path_line}) dropped")
            i = next_path(i + 1)  # read_faces reads no path line: the next one is where it stopped or after
            continue
        yield path_line, written, faces


def listed_images(
    records: Iterable[tuple[int, str, list[Face]]],
    resolve: Callable[[str], str],
    box_of: Callable[[Face], Box],
    name: str,
    sizes: Sizes,
    report: ProblemReport,
    first: dict[str, str],
) -> Iterator[tuple[Image, Size, list[tuple[Box, Face]]]]:
    """(image without faces, its size, each face's accepted box with the face) per usable record.

    ``records``: (path line number, image path as written, faces), faces starting with their line
    number. ``resolve``: the written path -> the image relative to the dataset folder (BadLabels
    when refused). ``box_of``: a face -> its box in pixels. ``first``: image -> where it was first
    listed, shared by every file of one import.
    """
    for path_line, written, faces in records:
        try:
            rel = resolve(written)
        except BadLabels as err:
            report.error(name, f"line {path_line}: {err}; image dropped")
            continue
        if rel in first:
            report.error(name, f"line {path_line}: {rel} is listed again (first in {first[rel]}); this record ignored")
            continue
        first[rel] = f"{name} line {path_line}"
        size = sizes.get(rel, name)
        if size is None:
            continue
        try:
            boxes = [accept_box(box_of(face), size, rel, name, f"line {face[0]}", report) for face in faces]
        except BadLabels as err:
            report.error(name, f"{err}; image {rel} set aside (its faces are unknown)")
            continue
        yield Image(rel, size.width, size.height), size, list(zip(boxes, faces))


def xywh_box(face: tuple) -> Box:
    """The box of a face ``(line, (x, y, w, h), ...)``: (x, y, x + w, y + h)."""
    x, y, w, h = face[1]
    return x, y, x + w, y + h


def line_numbers(text: str, line: int, counts: tuple[int, ...], kind: str, layout: str) -> list[float]:
    """The numbers of a face line; Malformed when it does not hold one of ``counts`` numbers or one
    is not a finite number. ``kind`` names such a line ("face line"), ``layout`` says what it holds."""
    tokens = text.split()
    if len(tokens) not in counts:
        raise Malformed(line, f"{layout}, this one has {len(tokens)}: '{excerpt(text.strip())}'")
    try:
        return [parse_float(t) for t in tokens]
    except BadLabels as err:
        raise Malformed(line, f"{kind}: {err}") from None
