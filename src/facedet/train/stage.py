"""Stage 4, train: the configured network and loss, from scratch, with Lightning; every run in MLflow.

Reads the augmented training set and the validation split; writes ``paths.train``/model.safetensors
(the epoch with the best validation AP@0.5, with the score threshold of best validation F1 in its
metadata), checkpoints/{best,last}.ckpt, metrics.json and run.json (the MLflow run the evaluate
stage continues). The logged model is registered as a new version of ``facedet`` in MLflow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pytorch_lightning as pl
import torch
from mlflow.models import infer_signature
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger
from torch.utils.data import DataLoader

from facedet import coco, tracking
from facedet.config import tracking_uri
from facedet.detect import FaceDetector
from facedet.evaluate.metrics import best_f1_threshold, pr_curve
from facedet.images import read_rgb
from facedet.loss import build_loss
from facedet.model import build_net, weights
from facedet.train.data import FaceDataset, collate
from facedet.train.module import FaceDetectorModule


def run(cfg: DictConfig) -> None:
    out = Path(cfg.paths.train)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # a new run, not a continuation of old ones
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)
    net = build_net(cfg.model)
    size = cfg.model.input_size
    train_set = FaceDataset(Path(cfg.paths.augment) / "train.json", Path(cfg.paths.augment) / "images", size, net.resize)
    val_set = FaceDataset(Path(cfg.paths.labels) / "val.json", Path(cfg.paths.collect) / "images", size, net.resize)
    loader = dict(batch_size=cfg.train.batch_size, num_workers=cfg.train.num_workers, collate_fn=collate)
    module = FaceDetectorModule(net, build_loss(cfg.loss), cfg.train.lr, cfg.train.weight_decay,
                                cfg.train.max_epochs, cfg.evaluate.threshold or 0.5)

    run_id = tracking.start_run(cfg, run_name=f"{cfg.model.name}")
    (out / "run.json").write_text(json.dumps({"run_id": run_id}) + "\n")
    checkpoint = ModelCheckpoint(dirpath=out / "checkpoints", filename="best", monitor="val/ap50", mode="max",
                                 save_last=True)
    trainer = pl.Trainer(max_epochs=cfg.train.max_epochs, accelerator=cfg.train.accelerator, devices=1,
                         deterministic=True, logger=MLFlowLogger(tracking_uri=tracking_uri(cfg), run_id=run_id),
                         callbacks=[checkpoint], log_every_n_steps=1, enable_model_summary=False,
                         limit_train_batches=cfg.train.limit_train_batches)
    trainer.fit(module, DataLoader(train_set, shuffle=True, **loader), DataLoader(val_set, **loader))

    best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(best)
    net = module.net.eval()
    threshold, val_f1 = best_f1_threshold(_val_curve(net, cfg))
    threshold = 0.5 if threshold != threshold else round(threshold, 4)  # nan: no face in val
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    weights.save(net, model_cfg, out / "model.safetensors", threshold=threshold, mlflow_run_id=run_id)
    summary = {key: float(value) for key, value in trainer.callback_metrics.items()}
    summary.update({"best/val_ap50": float(checkpoint.best_model_score), "best/val_f1": val_f1,
                    "best/threshold": threshold})

    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({k: v for k, v in summary.items() if k.startswith("best/")})
        mlflow.log_artifact(str(out / "model.safetensors"), "weights")
        mlflow.log_artifacts(str(out / "checkpoints"), "checkpoints")
        example = torch.rand(1, 3, size, size)
        predictor = Predictor(net).eval()
        with torch.no_grad():
            output = predictor(example).numpy()
        mlflow.pytorch.log_model(predictor, name="model", input_example=example.numpy(),
                                 signature=infer_signature(example.numpy(), output))
    registry = tracking.register(cfg, run_id)
    summary.update({"registry/version": registry["version"], "registry/champion": float(registry["champion"])})
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")


def _val_curve(net: torch.nn.Module, cfg: DictConfig) -> dict[str, list[float]]:
    """The validation PR curve of the trained network on the full-size validation pictures."""
    truth = coco.read(Path(cfg.paths.labels) / "val.json")
    detector = FaceDetector(net, threshold=0.0)
    predictions = [detector(read_rgb(Path(cfg.paths.collect) / "images" / image.file_name)) for image in truth]
    return pr_curve(truth, predictions, cfg.evaluate.iou_threshold)


class Predictor(torch.nn.Module):
    """What MLflow serves: images [B, 3, H, W] in [0, 1] -> [B, N, 5] candidates (x1, y1, x2, y2
    normalised, score) before non-maximum suppression."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.decode(self.net(images))
