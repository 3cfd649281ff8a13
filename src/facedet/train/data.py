"""Training data: a canonical COCO file and its images as tensors the networks take."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from facedet import coco
from facedet.images import read_rgb


def to_input(rgb: np.ndarray, size: int) -> torch.Tensor:
    """HxWx3 uint8 RGB -> float [3, size, size] in [0, 1], the whole picture stretched (the seed's way)."""
    resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(resized).permute(2, 0, 1).float().div_(255)


class FaceDataset(Dataset):
    """Items: (image [3, S, S], {"boxes": FloatTensor[N, 4] normalised (x1, y1, x2, y2)}).

    Images are decoded and resized once, at construction (small datasets, CPU training).
    """

    def __init__(self, coco_file: Path, images_dir: Path, input_size: int) -> None:
        self.images = coco.read(coco_file)
        self.inputs = [to_input(read_rgb(Path(images_dir) / i.file_name), input_size) for i in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = self.images[index]
        scale = torch.tensor([image.width, image.height, image.width, image.height], dtype=torch.float32)
        boxes = torch.tensor(image.boxes, dtype=torch.float32).reshape(-1, 4) / scale
        return self.inputs[index], {"boxes": boxes}


def collate(batch: list) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)
