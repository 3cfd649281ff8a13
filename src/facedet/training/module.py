"""Thin Lightning glue: a network, a loss, an optimiser and a schedule; validation AP as a torchmetrics Metric."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn

from facedet import progress
from facedet.coco import Detection, Image
from facedet.evaluation.metrics import detection_metrics
from facedet.model import predict

# Validation boxes are normalised; AP is scale-free, this only keeps COCO's area bookkeeping sane.
_VAL_SCALE = 1000.0


class ValidationAP(torchmetrics.Metric):
    """COCO AP@0.5 (and AP@[.5:.95], mean IoU, F1 at ``threshold``) over the whole validation set with
    [`facedet.evaluation.metrics.detection_metrics`][] (faster-coco-eval).

    States are rows tagged with the dataset index of their image, concatenated across DDP ranks
    (``dist_reduce_fx="cat"``); an image a DistributedSampler repeated to pad a shard counts once.
    """

    full_state_update = False

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold
        self.add_state("images", default=[], dist_reduce_fx="cat")  # [B] dataset indices
        self.add_state("faces", default=[], dist_reduce_fx="cat")  # [F, 6] index, x1, y1, x2, y2, is_ignore
        self.add_state("detections", default=[], dist_reduce_fx="cat")  # [D, 6] index, x1, y1, x2, y2, score

    def update(self, detections: list[np.ndarray], targets: list[dict[str, torch.Tensor]]) -> None:
        for rows, target in zip(detections, targets):
            index = target["index"].reshape(1).to(self.device, torch.float64)
            self.images.append(index)
            for boxes, flag in ((target["boxes"], 0.0), (target.get("ignore", torch.zeros(0, 4)), 1.0)):
                boxes = boxes.reshape(-1, 4).to(self.device, torch.float64)
                self.faces.append(
                    torch.cat(
                        [
                            index.expand(len(boxes), 1),
                            boxes,
                            torch.full((len(boxes), 1), flag, dtype=torch.float64, device=self.device),
                        ],
                        1,
                    )
                )
            rows = torch.as_tensor(rows, dtype=torch.float64, device=self.device)
            rows = rows.reshape(-1, rows.shape[-1])[:, :5]  # landmark columns, if any, are not scored here
            self.detections.append(torch.cat([index.expand(len(rows), 1), rows], 1))

    def compute(self) -> dict[str, float]:
        def cat(state):
            return (torch.cat(state) if isinstance(state, list) else state).cpu().numpy() if len(state) else []

        images, faces, detections = cat(self.images), cat(self.faces), cat(self.detections)
        order = sorted({int(i) for i in images})
        truth, predictions = [], []
        for i in order:
            rows = faces[faces[:, 0] == i] if len(faces) else np.zeros((0, 6))
            rows = np.unique(rows, axis=0)  # a padded repeat of the image brings its faces twice
            box = [tuple(r[1:5] * _VAL_SCALE) for r in rows if r[5] == 0]
            ignore = [tuple(r[1:5] * _VAL_SCALE) for r in rows if r[5] == 1]
            truth.append(Image(str(i), int(_VAL_SCALE), int(_VAL_SCALE), box, ignore))
            found = detections[detections[:, 0] == i] if len(detections) else np.zeros((0, 6))
            found = np.unique(found, axis=0)
            predictions.append([Detection(tuple(r[1:5] * _VAL_SCALE), float(r[5])) for r in found])
        metrics = detection_metrics(truth, predictions, self.threshold)
        # nan when the validation split has no face: 0 keeps "best checkpoint" comparisons meaningful.
        return {
            key: float(metrics[key]) if metrics[key] == metrics[key] else 0.0
            for key in ("ap50", "ap50_95", "mean_iou", "f1", "recall")
        }


class FaceDetectorModule(pl.LightningModule):
    """Logs ``train/loss`` (and each loss term) and ``lr`` per epoch, ``val/loss``, ``val/ap50``,
    ``val/ap50_95``, ``val/mean_iou``, ``val/f1`` and ``val/recall`` per epoch.

    ``optimizer``: a partial taking the parameters (``_partial_: true`` in conf/optimizer/);
    ``scheduler``: a partial taking (optimizer, total_steps=...) stepped after every optimiser step
    (conf/scheduler/), or None for a constant rate. ``trainable``: ``all``, or ``landmarks``: only the
    network's ``predict_landmarks`` branch learns; the rest keeps its weights and stays in eval mode
    (batch norm uses and keeps its running statistics), so its boxes and scores do not move.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable,
        scheduler: Callable | None = None,
        threshold: float = 0.5,
        trainable: str = "all",
    ) -> None:
        super().__init__()
        self.net, self.loss = net, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.val_ap = ValidationAP(threshold)
        self.frozen: list[nn.Module] = []
        self.frozen_state: dict[str, torch.Tensor] = {}
        if trainable == "landmarks":
            frozen = {name: module for name, module in net.named_children() if name != "predict_landmarks"}
            self.frozen = list(frozen.values())
            for module in self.frozen:
                module.requires_grad_(False).eval()
            self.frozen_state = {
                f"net.{name}.{key}": value.detach().clone()
                for name, module in frozen.items()
                for key, value in module.state_dict().items()
            }
        elif trainable != "all":
            raise ValueError(f"config key 'train.trainable' = {trainable!r}: expected all or landmarks")

    def train(self, mode: bool = True) -> FaceDetectorModule:
        # Lightning's loops restore each submodule's mode after validation; this covers any train() call.
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    # A weight average (conf/callbacks/ema.yaml) recomputes even the frozen weights, with float rounding,
    # and puts them into checkpoints and, at the end, into the network: the frozen ones are put back.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"].update(self.frozen_state)

    def on_train_end(self) -> None:
        if self.frozen_state:
            self.load_state_dict(self.frozen_state, strict=False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(images)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = self.loss(self.net(images), targets)
        for name, value in losses.items():
            self.log(
                f"train/{name}",
                value,
                on_step=False,
                on_epoch=True,
                prog_bar=name == "loss",
                batch_size=len(images),
                sync_dist=True,
            )
        return losses["loss"]

    def validation_step(self, batch, batch_idx: int) -> None:
        images, targets = batch
        losses = self.loss(self.net(images), targets)
        self.log("val/loss", losses["loss"], on_epoch=True, prog_bar=True, batch_size=len(images), sync_dist=True)
        self.val_ap.update(predict(self.net, images), targets)

    def on_validation_epoch_end(self) -> None:
        metrics = self.val_ap.compute()
        self.val_ap.reset()
        self.log("val/ap50", metrics.pop("ap50"), prog_bar=True)
        for key, value in metrics.items():
            self.log(f"val/{key}", value)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int = 100,
    warmup_ratio: float = 0.1,
    min_ratio: float = 0.01,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from ``warmup_ratio`` x lr over ``warmup_steps`` optimiser steps (at most a tenth of
    the run), then cosine decay to ``min_ratio`` x lr at ``total_steps`` (SCRFD/YuNet's shape)."""
    warmup = max(1, min(int(warmup_steps), total_steps // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return warmup_ratio + (1 - warmup_ratio) * step / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class EpochSeed(pl.Callback):
    """Reseed the global RNGs (dropout) before the first batch of every training epoch from (seed,
    epoch, rank): a run resumed from an end-of-epoch checkpoint then draws the same random numbers as
    an uninterrupted one (checkpoints do not keep RNG states). Not in ``on_train_epoch_start``:
    Lightning skips that hook for the first epoch after such a restart. (Augmentation draws are seeded
    per item by the dataset, see [`facedet.training.data.FaceDataset`][].)"""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx != 0:
            return
        value = (self.seed * 1_000_003 + trainer.current_epoch * 1_009 + trainer.global_rank) % 2**32
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)


class EpochLines(pl.Callback):
    """One line per epoch with the key metrics, for logs without a terminal (``dvc queue logs``, CI,
    ``| tee``), where Lightning's progress bar prints nothing until the end. Validation metrics are
    shown on the epochs that were validated. Within a long epoch, a line every ~30 s says how far it
    is (pictures, pictures per second, time left in the epoch)."""

    def __init__(self, every: float = progress.EVERY_S) -> None:
        self.every = every

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.clock, self.pictures = progress.Every(self.every), 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        if not hasattr(self, "clock"):  # the first epoch after a resume skips on_train_epoch_start
            self.on_train_epoch_start(trainer, pl_module)
        self.pictures += len(batch[0])
        if trainer.is_global_zero and self.clock():
            batches = trainer.num_training_batches
            total = round(self.pictures * batches / (batch_idx + 1)) if batches not in (None, float("inf")) else None
            what = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
            print(progress.line(what, self.pictures, total, self.clock.elapsed), flush=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        epoch, metrics = trainer.current_epoch + 1, trainer.callback_metrics
        validated = trainer.check_val_every_n_epoch and epoch % trainer.check_val_every_n_epoch == 0
        keys = ("train/loss", "val/loss", "val/ap50") if validated else ("train/loss",)
        shown = " ".join(f"{k} {float(metrics[k]):.4f}" for k in keys if k in metrics)
        print(f"epoch {epoch}/{trainer.max_epochs}: {shown}", flush=True)
