"""Thin Lightning glue: a network, a loss and an optimiser; validation AP with the evaluate metrics."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
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
                     batch_size=len(images))
        return losses["loss"]

    def validation_step(self, batch, batch_idx: int) -> None:
        images, targets = batch
        losses = self.loss(self.net(images), targets)
        self.log("val/loss", losses["loss"], on_epoch=True, prog_bar=True, batch_size=len(images))
        for target, rows in zip(targets, predict(self.net, images)):
            boxes = (target["boxes"] * _VAL_SCALE).tolist()
            self._val_truth.append(Image(str(len(self._val_truth)), int(_VAL_SCALE), int(_VAL_SCALE),
                                         [tuple(b) for b in boxes]))
            self._val_predictions.append([Detection(tuple((r[:4] * _VAL_SCALE).tolist()), float(r[4]))
                                          for r in rows])

    def on_validation_epoch_end(self) -> None:
        metrics = detection_metrics(self._val_truth, self._val_predictions, self.threshold)
        self._val_truth, self._val_predictions = [], []
        ap50 = metrics["ap50"] if metrics["ap50"] == metrics["ap50"] else 0.0  # nan when val has no face
        self.log("val/ap50", ap50, prog_bar=True)
        for key in ("ap50_95", "mean_iou", "f1"):
            value = metrics[key]
            self.log(f"val/{key}", value if value == value else 0.0)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
