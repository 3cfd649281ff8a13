"""``facedet align``: aligned face crops of pictures, written as PNG files."""

from __future__ import annotations

from pathlib import Path

from facedet.apps.detect import resolve_source
from facedet.images import ImageError, read_picture, write_image
from facedet.inference.align import TEMPLATE_SIZE
from facedet.inference.detector import FaceDetector


def write_aligned(
    detector: FaceDetector, spec: str | Path, out: Path, size: int = TEMPLATE_SIZE
) -> tuple[int, list[str]]:
    """``facedet align``: every face of the pictures ``spec`` names (a picture, a folder, a glob) as
    ``out/<picture's path without suffix>_<k>.png`` (k = 0 for its best face), ``size`` x ``size``.
    Returns (crops written, one line per picture that could not be read)."""
    if not detector.has_landmarks:
        raise ValueError(f"{detector.model_info.get('file', 'the model')}: the model predicts no landmarks")
    source = resolve_source(spec)
    if source.kind in ("video", "camera"):
        raise ValueError(f"{spec}: facedet align takes pictures (a file, a folder or a glob), not a {source.kind}")
    written, errors = (
        0,
        [f"{source.name(link)}: a link that leads outside the folder (not read)" for link in source.refused],
    )
    for path in source.files:
        name = source.name(path)
        try:
            rgb = read_picture(path).rgb
        except ImageError as err:
            errors.append(f"{name}: {err.problem}")
            continue
        for k, crop in enumerate(detector.align(rgb, size)):
            target = Path(out) / f"{Path(name).with_suffix('').as_posix()}_{k}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            write_image(target, crop)
            written += 1
    return written, errors
