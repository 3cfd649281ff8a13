"""Aligned face crops: each face's five landmarks mapped onto ArcFace's five-point template.

Face-recognition models (ArcFace and most since) expect a 112 x 112 crop whose eyes, nose tip and mouth
corners sit on a fixed template; a similarity transform (rotation, uniform scale, shift: no shear)
fitted to the five points by OpenCV (``cv2.estimateAffinePartial2D``, least squares) puts them there.
"""

from __future__ import annotations

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
