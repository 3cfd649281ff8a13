"""Thin Lightning glue: a network, a loss and an optimiser; validation AP with the evaluate metrics."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import nn

from facedet.coco import Detection, Image
from facedet.evaluate.metrics import detection_metrics
from facedet.model import predict

# Validation boxes are normalised; AP is scale-free, this only keeps COCO's area bookkeeping sane.
_VAL_SCALE = 1000.0


class FaceDetectorModule(pl.LightningModule):
    """Logs ``train/loss`` (and each loss term) per step and epoch, ``val/loss``, ``val/ap50``,
    ``val/ap50_95``, ``val/mean_iou`` and ``val/f1`` per epoch."""

    def __init__(self, net: nn.Module, loss: nn.Module, lr: float, weight_decay: float, max_epochs: int,
                 threshold: float = 0.5) -> None:
        super().__init__()
        self.net, self.loss = net, loss
        self.lr, self.weight_decay, self.max_epochs, self.threshold = lr, weight_decay, max_epochs, threshold
        self._val_truth: list[Image] = []
        self._val_predictions: list[list[Detection]] = []

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(images)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = self.loss(self.net(images), targets)
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, prog_bar=name == "loss",
                     batch_size=len(images), sync_dist=True)
        return losses["loss"]

    def validation_step(self, batch, batch_idx: int) -> None:
        images, targets = batch
        losses = self.loss(self.net(images), targets)
        self.log("val/loss", losses["loss"], on_epoch=True, prog_bar=True, batch_size=len(images), sync_dist=True)
        for target, rows in zip(targets, predict(self.net, images)):
            boxes = (target["boxes"] * _VAL_SCALE).tolist()
            self._val_truth.append(Image(str(len(self._val_truth)), int(_VAL_SCALE), int(_VAL_SCALE),
                                         [tuple(b) for b in boxes]))
            self._val_predictions.append([Detection(tuple((r[:4] * _VAL_SCALE).tolist()), float(r[4]))
                                          for r in rows])

    def on_validation_epoch_end(self) -> None:
        truth, predictions = self._val_truth, self._val_predictions
        self._val_truth, self._val_predictions = [], []
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # DDP: each rank saw a shard of the validation set; AP is computed on all of it, on every rank.
            shards: list = [None] * dist.get_world_size()
            dist.all_gather_object(shards, (truth, predictions))
            truth = [replace(t, file_name=str(i)) for i, t in enumerate(t for shard, _ in shards for t in shard)]
            predictions = [p for _, shard in shards for p in shard]
        metrics = detection_metrics(truth, predictions, self.threshold)
        ap50 = metrics["ap50"] if metrics["ap50"] == metrics["ap50"] else 0.0  # nan when val has no face
        self.log("val/ap50", ap50, prog_bar=True)
        for key in ("ap50_95", "mean_iou", "f1"):
            value = metrics[key]
            self.log(f"val/{key}", value if value == value else 0.0)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class EpochSeed(pl.Callback):
    """Reseed the global RNGs (dropout, random augmentations) before the first batch of every training
    epoch from (seed, epoch, rank): a run resumed from an end-of-epoch checkpoint then draws the same
    random numbers as an uninterrupted one (checkpoints do not keep RNG states). Not in
    ``on_train_epoch_start``: Lightning skips that hook for the first epoch after such a restart."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx != 0:
            return
        value = (self.seed * 1_000_003 + trainer.current_epoch * 1_009 + trainer.global_rank) % 2**32
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)
