"""From a picture to a network input and back: the one place that knows how images are resized.

Boxes given to and returned by networks are normalised to the network input: (x / W_in, y / H_in).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from facedet.boxes import clip_boxes

RESIZE_MODES = ("stretch", "letterbox")


@dataclass(frozen=True)
class Placement:
    """How a picture of ``width`` x ``height`` sits in the network input of ``input_width`` x ``input_height``."""

    width: int
    height: int
    scale_x: float
    scale_y: float
    input_width: int
    input_height: int

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Picture pixels [N, 4] -> normalised network-input coordinates."""
        factor = np.array([self.scale_x / self.input_width, self.scale_y / self.input_height] * 2)
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * factor

    def points_to_input(self, points: np.ndarray) -> np.ndarray:
        """Picture pixels [..., 2] (x, y) -> normalised network-input coordinates."""
        return np.asarray(points, dtype=np.float64) * [
            self.scale_x / self.input_width,
            self.scale_y / self.input_height,
        ]

    def points_to_picture(self, points: np.ndarray) -> np.ndarray:
        """Normalised network-input coordinates [..., 2] (x, y) -> picture pixels (not clipped: a point
        of a face at the border may lie outside)."""
        return np.asarray(points, dtype=np.float64) * [
            self.input_width / self.scale_x,
            self.input_height / self.scale_y,
        ]

    def to_picture(self, boxes: np.ndarray) -> np.ndarray:
        """Normalised network-input coordinates [N, 4] -> picture pixels, clipped to the picture."""
        factor = np.array([self.input_width / self.scale_x, self.input_height / self.scale_y] * 2)
        out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * factor
        return clip_boxes(out, self.width, self.height)


def prepare(
    rgb: np.ndarray, size: int, mode: str = "stretch", stride: int = 32, square: bool = True
) -> tuple[torch.Tensor, Placement]:
    """HxWx3 uint8 RGB -> float [3, H_in, W_in] in [0, 1] and its placement.

    ``stretch``: the whole picture resized to size x size (the seed's way).
    ``letterbox``: aspect kept, longest side ``size``, padded at the right and bottom with zeros to
    size x size (``square``, for batches) or only to multiples of ``stride`` (any input size).
    """
    height, width = rgb.shape[:2]
    if mode == "stretch":
        resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        placement = Placement(width, height, size / width, size / height, size, size)
    elif mode == "letterbox":
        scale = size / max(width, height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation) if scale != 1 else rgb
        in_w, in_h = (size, size) if square else (-(-new_w // stride) * stride, -(-new_h // stride) * stride)
        resized = np.zeros((in_h, in_w, 3), np.uint8)
        resized[:new_h, :new_w] = small
        placement = Placement(width, height, new_w / width, new_h / height, in_w, in_h)
    else:
        raise ValueError(f"config key 'model.resize' = {mode!r}: expected one of {RESIZE_MODES}")
    return torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).float().div_(255), placement
