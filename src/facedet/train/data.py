"""Training data: a canonical COCO file and its images as tensors the networks take."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, RandomSampler

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


class EpochShuffle(RandomSampler):
    """A shuffle whose order depends only on (seed, epoch), so that a run resumed from a checkpoint
    sees the same batches as an uninterrupted one (Lightning calls ``set_epoch`` before every epoch;
    the plain RandomSampler draws from the global RNG, whose state no checkpoint keeps).

    It is a RandomSampler, so under DDP Lightning replaces it by a DistributedSampler with
    ``shuffle=True`` (seeded from the global seed and the epoch as well).
    """

    def __init__(self, data_source, seed: int) -> None:
        super().__init__(data_source)
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()
