"""Aligned face crops: each face's five landmarks mapped onto ArcFace's five-point template.

Face-recognition models (ArcFace and most since) expect a 112 x 112 crop whose eyes, nose tip and mouth
corners sit on a fixed template; a similarity transform (rotation, uniform scale, shift: no shear)
fitted to the five points by OpenCV (``cv2.estimateAffinePartial2D``, least squares) puts them there.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facedet.coco import Detection

# ArcFace's template for a 112 x 112 crop, in facedet's order (image-left eye first; see facedet.coco).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
TEMPLATE_SIZE = 112


def similarity(points: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The 2 x 3 similarity transform taking five (x, y) points onto the template scaled to ``size``."""
    template = ARCFACE_TEMPLATE * (size / TEMPLATE_SIZE)
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(points, np.float32).reshape(-1, 2), template, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("the five points do not determine a similarity transform (all on one spot?)")
    return matrix


def align_faces(image: np.ndarray, faces: list[Detection], size: int = TEMPLATE_SIZE) -> list[np.ndarray]:
    """One ``size`` x ``size`` crop (same channels as ``image``) per face, in the order given; ValueError
    for a face without landmarks."""
    if size < 8:
        raise ValueError(f"size {size}: expected at least 8 pixels")
    crops = []
    for face in faces:
        if face.landmarks is None:
            raise ValueError("a face without landmarks cannot be aligned (the model predicts none)")
        matrix = similarity(np.asarray(face.landmarks), size)
        crops.append(cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0))
    return crops


def write_aligned(detector, spec: str | Path, out: Path, size: int = TEMPLATE_SIZE) -> tuple[int, list[str]]:
    """``facedet align``: every face of the pictures ``spec`` names (a picture, a folder, a glob) as
    ``out/<picture's path without suffix>_<k>.png`` (k = 0 for its best face), ``size`` x ``size``.
    Returns (crops written, one line per picture that could not be read)."""
    from facedet.apps.detect import resolve_source
    from facedet.images import ImageError, read_picture, write_image

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
