"""From decoded network outputs to faces: score threshold and non-maximum suppression.

Shared by every backend (PyTorch, ONNX Runtime), so both give the same faces.
"""

from __future__ import annotations

import cv2
import numpy as np


def select(decoded: np.ndarray, threshold: float, nms_iou: float = 0.4, max_faces: int = 300) -> np.ndarray:
    """decoded [N, 5] (x1, y1, x2, y2, score, and any further columns such as landmarks), any
    coordinates -> the kept rows, best score first."""
    decoded = np.asarray(decoded, dtype=np.float32)
    decoded = decoded.reshape(-1, decoded.shape[-1] if decoded.ndim > 1 else 5)
    decoded = decoded[decoded[:, 4] >= threshold]
    if len(decoded) <= 1:
        return decoded
    xywh = np.column_stack([decoded[:, :2], decoded[:, 2:4] - decoded[:, :2]])
    # NMSBoxes wants integer-free xywh lists; 1000x keeps precision for normalised coordinates.
    keep = cv2.dnn.NMSBoxes((xywh * 1000).tolist(), decoded[:, 4].tolist(), float(threshold), nms_iou, top_k=max_faces)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    kept = decoded[keep]
    return kept[np.argsort(-kept[:, 4], kind="stable")]
