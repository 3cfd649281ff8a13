"""Training data, streamed: a COCO file and its image folder, decoded lazily, augmented afresh per draw.

The datasets hold only the COCO records (file names and boxes), so their memory does not depend on
the pictures; every item is read from disk when asked for, in the DataLoader workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from facedet import coco
from facedet.coco import NUM_KEYPOINTS
from facedet.images import read_rgb
from facedet.landmarks import landmark_array
from facedet.model.inputs import prepare
from facedet.training import augment


class FaceDataset(Dataset):
    """Items: (image [3, S, S] in [0, 1], {"boxes": [N, 4], "ignore": [M, 4], "landmarks": [N, 5, 3],
    "index": []}), boxes (x1, y1, x2, y2) and points (x, y) normalised to the input, v 0 where a face
    has no point (not labelled, or cut away).

    With a ``pipeline`` the dataset is indexed by ``(epoch, index)`` (what [`EpochShuffle`][]
    yields) and each item is a fresh augmented draw seeded by (``seed``, epoch, index), in whichever
    process it is made. Faces whose shorter side is below ``min_face`` input pixels become ignore
    regions: neither positives nor negatives for the loss.
    """

    def __init__(
        self,
        coco_file: Path,
        images_dir: Path,
        input_size: int,
        resize: str,
        pipeline=None,
        seed: int = 0,
        min_face: float = 0.0,
    ) -> None:
        self.images = coco.read(coco_file)
        self.images_dir, self.input_size, self.resize = Path(images_dir), int(input_size), resize
        self.pipeline, self.seed, self.min_face = pipeline, int(seed), float(min_face)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        image = self.images[index]
        rgb = read_rgb(self.images_dir / image.file_name)
        boxes, ignore = np.asarray(image.boxes, np.float64).reshape(-1, 4), np.asarray(image.ignore).reshape(-1, 4)
        points = landmark_array(image)
        if self.pipeline is not None:  # ignore regions go through the transforms as boxes too
            both_points = np.concatenate([points, np.zeros((len(image.ignore), NUM_KEYPOINTS, 3))])
            rgb, both, kept, moved = augment.apply_with_landmarks(
                self.pipeline,
                rgb,
                [*image.boxes, *image.ignore],
                both_points,
                augment.draw_seed(self.seed, epoch, index),
            )
            is_face = np.asarray(kept, dtype=np.int64) < len(image.boxes)
            boxes, ignore = both[is_face].reshape(-1, 4), both[~is_face].reshape(-1, 4)
            points = moved[is_face].reshape(-1, NUM_KEYPOINTS, 3)
        tensor, placement = prepare(rgb, self.input_size, self.resize)
        boxes, ignore = placement.to_input(boxes), placement.to_input(ignore)
        points = np.concatenate([placement.points_to_input(points[..., :2]), points[..., 2:]], axis=-1)
        if self.min_face > 0 and len(boxes):
            sides = (boxes[:, 2:] - boxes[:, :2]) * [placement.input_width, placement.input_height]
            small = sides.min(axis=1) < self.min_face
            boxes, ignore, points = boxes[~small], np.concatenate([ignore, boxes[small]]), points[~small]
        return tensor, {
            "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "ignore": torch.as_tensor(ignore, dtype=torch.float32).reshape(-1, 4),
            "landmarks": torch.as_tensor(points, dtype=torch.float32).reshape(-1, NUM_KEYPOINTS, 3),
            "index": torch.tensor(index),
        }


def collate(batch: list) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


class EpochShuffle(Sampler):
    """Yields (epoch, index): a shuffle that depends only on (seed, epoch), so that a run resumed from
    a checkpoint sees the same batches and the same augmented draws as an uninterrupted one (Lightning
    calls ``set_epoch`` before every epoch). Under DDP each rank takes every world-size-th item of
    the same shuffle (padded to equal length), as DistributedSampler does."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = int(size), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _shard(self) -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        return -(-self.size // self._shard()[1])

    def __iter__(self):
        rank, world = self._shard()
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        order += order[: len(self) * world - len(order)]
        yield from ((self.epoch, index) for index in order[rank::world])


class FaceDataModule(pl.LightningDataModule):
    """The training set (online: the labels stage's train split, augmented by ``pipeline_file``; offline:
    the augment stage's materialised copies, as they are) and the validation split, never augmented."""

    def __init__(
        self,
        train_coco: Path,
        train_images: Path,
        val_coco: Path,
        val_images: Path,
        input_size: int,
        detect_size: int,
        resize: str,
        batch_size: int,
        pipeline_file: Path | None = None,
        seed: int = 0,
        min_face: float = 0.0,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.train_coco, self.train_images = Path(train_coco), Path(train_images)
        self.val_coco, self.val_images = Path(val_coco), Path(val_images)
        self.pipeline_file = Path(pipeline_file) if pipeline_file else None
        self.input_size, self.detect_size, self.resize = input_size, detect_size, resize
        self.seed, self.min_face = seed, min_face
        self.loader = dict(
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            collate_fn=collate,
            persistent_workers=num_workers > 0,
        )
        self.train_set = self.val_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            pipeline = augment.load(self.pipeline_file) if self.pipeline_file else None
            self.train_set = FaceDataset(
                self.train_coco, self.train_images, self.input_size, self.resize, pipeline, self.seed, self.min_face
            )
            self.val_set = FaceDataset(
                self.val_coco, self.val_images, self.detect_size, self.resize, min_face=self.min_face
            )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, sampler=EpochShuffle(len(self.train_set), self.seed), **self.loader)

    def val_dataloader(self) -> DataLoader:
        # Lightning's own sampler replacement is off (see conf/trainer): shard validation by hand under DDP.
        sharded = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        sampler = DistributedSampler(self.val_set, shuffle=False) if sharded else None
        return DataLoader(self.val_set, sampler=sampler, **self.loader)
