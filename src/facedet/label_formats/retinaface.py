"""Import RetinaFace's WIDER FACE ``label.txt`` (boxes with five landmarks; InsightFace / Pytorch_Retinaface).

    src/label.txt        # 0--Parade/0_Parade_marchingband_1_849.jpg
                         449 330 122 149 488.906 373.643 0.0 542.089 376.442 0.0 ... 0.82
    src/images/0--Parade/0_Parade_marchingband_1_849.jpg

A record is a line ``# <image path>`` (relative to the images folder) and then one line per face:
``x y w h`` in pixels, then optionally five ``lx ly flag`` triples and a blur score (20 numbers in all).
Flag 0 is a visible point, 1 a hidden one; all fifteen values -1 mean a face without landmarks
(normal: RetinaFace's validation file has none). The points are in RetinaFace's order, which is
facedet's (`facedet.coco.KEYPOINT_NAMES`: image-left eye first).

Conventions as the other importers ([`facedet.label_formats.formats`][]): only listed images are imported
(a record without face lines is a negative); a face line that is not 4 or 19/20 numbers drops its
image (error naming the file and line); malformed landmarks drop the landmarks, not the face.
Faces whose shorter side is below ``min_size`` pixels become ignore regions.
"""

from __future__ import annotations

from pathlib import Path

from facedet.coco import NUM_KEYPOINTS, Image
from facedet.label_formats.formats import (
    Malformed,
    accept_landmarks,
    excerpt,
    left_option,
    number_option,
    sorted_images,
)
from facedet.label_formats.listed import line_numbers, listed_images, read_lines, xywh_box
from facedet.label_formats.paths import Sizes, dataset_root, display_path, folder_inside, option_path, resolve_image
from facedet.problems import ProblemReport


def import_retinaface(
    src: Path,
    report: ProblemReport,
    *,
    annotations: Path | str = "label.txt",
    images: Path | str | None = None,
    min_size: float = 0,
    left: str = "image",
) -> list[Image]:
    """The images listed in a RetinaFace ``label.txt`` with their faces and landmarks.

    ``annotations``: the file (relative to src); ``images``: the folder its paths are relative to
    (default: ``images`` beside the file).
    """
    root = dataset_root(src)
    min_size = number_option(min_size, "min_size")
    left = left_option(left)
    ann_path = option_path(root, annotations, "label.txt")
    if not ann_path.is_file():
        raise FileNotFoundError(f"annotations: {ann_path} is not a file")
    images_dir = option_path(root, images, "") if images is not None else ann_path.parent / "images"
    base = folder_inside(root, images_dir, "images")
    name = display_path(root, ann_path)
    lines = read_lines(ann_path, name, report)
    if lines is None:
        return []
    result: dict[str, Image] = {}
    records = _records(lines, name, report)
    resolve = lambda written: resolve_image(root, base, written)  # noqa: E731
    for image, size, faces in listed_images(records, resolve, xywh_box, name, Sizes(root, report), report, {}):
        for box, (line, _, points) in faces:
            if min(box[2] - box[0], box[3] - box[1]) < min_size:
                image.ignore.append(box)
                continue
            image.boxes.append(box)
            image.landmarks.append(
                accept_landmarks(points, box, size, left, name, f"line {line}", report) if points else None
            )
        if not any(image.landmarks):
            image.landmarks = []
        result[image.file_name] = image
    return sorted_images(result)


def _records(lines: list[str], name: str, report: ProblemReport):
    """(path line number, image path, [(line number, (x, y, w, h), points or None)]) per good record."""
    i, n = 0, len(lines)
    while i < n:
        text = lines[i].strip()
        if not text:
            i += 1
            continue
        if not text.startswith("#"):
            report.error(name, f"line {i + 1}: expected '# <image path>', got '{excerpt(text)}'; skipped")
            i += 1
            continue
        path_line, written = i + 1, text[1:].strip()
        i += 1
        faces = []
        try:
            while i < n and not lines[i].strip().startswith("#"):
                if lines[i].strip():
                    faces.append(_face(lines[i], i + 1))
                i += 1
        except Malformed as err:
            report.error(name, f"line {err.line}: {err}; image {written} (line {path_line}) dropped")
            while i < n and not lines[i].strip().startswith("#"):
                i += 1
            continue
        yield path_line, written, faces


def _face(text: str, line: int):
    values = line_numbers(
        text,
        line,
        (4, 4 + 3 * NUM_KEYPOINTS, 5 + 3 * NUM_KEYPOINTS),
        "face line",
        "a face line is 'x y w h' and optionally five 'x y flag' landmarks and a blur score (4, 19 or 20 numbers)",
    )
    x, y, w, h = values[:4]
    marks = values[4 : 4 + 3 * NUM_KEYPOINTS]
    if not marks or all(v == -1 for v in marks):
        return line, (x, y, w, h), None
    # RetinaFace's flag: 0 visible, 1 hidden, -1 none; COCO's v: 2 visible, 1 hidden, 0 none.
    visibility = {0.0: 2, 1.0: 1, -1.0: 0}
    points = [
        (px, py, visibility.get(flag, flag) if not (px == -1 and py == -1) else 0)
        for px, py, flag in zip(marks[0::3], marks[1::3], marks[2::3])
    ]
    return line, (x, y, w, h), points
