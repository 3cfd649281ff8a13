"""Training data: a canonical COCO file and its images as tensors the networks take."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from facedet import coco
from facedet.images import read_rgb
from facedet.model.inputs import prepare


class FaceDataset(Dataset):
    """Items: (image [3, S, S], {"boxes": FloatTensor[N, 4] (x1, y1, x2, y2) normalised to the input}).

    Images are decoded and resized once, at construction (small datasets, CPU training).
    """

    def __init__(self, coco_file: Path, images_dir: Path, input_size: int, resize: str) -> None:
        self.images = coco.read(coco_file)
        self.inputs, self.targets = [], []
        for image in self.images:
            tensor, placement = prepare(read_rgb(Path(images_dir) / image.file_name), input_size, resize)
            self.inputs.append(tensor)
            boxes = placement.to_input(image.boxes) if image.boxes else torch.zeros(0, 4)
            self.targets.append({"boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)})

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.inputs[index], self.targets[index]


def collate(batch: list) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)
