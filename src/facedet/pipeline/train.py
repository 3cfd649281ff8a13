"""Stage 4, train: the configured network and loss, from scratch, with Lightning; every run in MLflow.

Reads the augmented training set and the validation split; writes ``paths.train``/model.safetensors
(the epoch with the best validation AP@0.5, with the score threshold of best validation F1 in its
metadata), checkpoints/{best,last}.ckpt, metrics.json and run.json (the MLflow run the evaluate
stage continues). The logged model is registered as a new version of ``facedet`` in MLflow.

**Resume.** ``last.ckpt`` is written after every epoch, and ``checkpoints/resume.json`` records the
MLflow run and a fingerprint of what the training depends on (the config keys below, the training and
validation data, the code of the model, loss and train packages). A run that was killed continues
from ``last.ckpt`` into the same MLflow run when ``train.resume`` is true and the fingerprint is the
same; anything else starts afresh (old checkpoints deleted, a new MLflow run). The shuffle order and
the RNGs are functions of (seed, epoch), so the resumed run ends with the same metrics.

**Several processes (DDP).** ``train.strategy``/``train.devices``/``train.num_nodes`` go to the
Lightning Trainer. Only global rank 0 creates the MLflow run, deletes/writes files and logs; the
other ranks only train (the MLflow logger is rank-zero-only in Lightning, so they need no run id).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import mlflow
import pytorch_lightning as pl
import torch
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger
from torch.utils.data import DataLoader

from facedet import coco, tracking
from facedet.config import tracking_uri
from facedet.inference.detector import FaceDetector
from facedet.evaluate.metrics import best_f1_threshold, pr_curve
from facedet.images import read_rgb
from facedet.loss import build_loss
from facedet.model import build_net, weights
from facedet.train.data import EpochShuffle, FaceDataset, collate
from facedet.train.module import EpochSeed, FaceDetectorModule

log = logging.getLogger(__name__)

RESUME_FILE = "resume.json"
# Config keys the trained weights depend on (train.resume itself does not).
FINGERPRINT_KEYS = ("seed", "paths.augment", "paths.labels", "paths.collect", "model", "loss", "train",
                    "evaluate.threshold")


def fingerprint(cfg: DictConfig) -> str:
    """A hash of what a checkpoint is only valid for: the relevant config, the data, the code."""
    digest = hashlib.sha256()
    relevant = {key: OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
                for key in FINGERPRINT_KEYS for node in [OmegaConf.select(cfg, key, default=None)]}
    relevant["train"] = {k: v for k, v in (relevant["train"] or {}).items() if k != "resume"}
    digest.update(json.dumps(relevant, sort_keys=True, default=str).encode())
    files = [(Path(cfg.paths.augment) / "train.json", Path(cfg.paths.augment) / "images"),
             (Path(cfg.paths.labels) / "val.json", Path(cfg.paths.collect) / "images")]
    for coco_file, images_dir in files:
        digest.update(coco_file.read_bytes())
        for image in coco.read(coco_file):
            digest.update((images_dir / image.file_name).read_bytes())
    for folder in (Path(__file__).parents[1] / name for name in ("model", "loss", "train")):
        for source in sorted(folder.rglob("*.py")):
            digest.update(str(source.relative_to(folder)).encode() + source.read_bytes())
    return digest.hexdigest()


def resume_point(cfg: DictConfig, checkpoints: Path, key: str) -> tuple[str, Path, int] | None:
    """(MLflow run id, last.ckpt, its epoch) when the last run can be continued, else None.
    Reads only, so that every DDP rank comes to the same answer."""
    state_file, last = checkpoints / RESUME_FILE, checkpoints / "last.ckpt"
    if not cfg.train.get("resume", True) or not (state_file.is_file() and last.is_file()):
        return None
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):  # unreadable, or deleted by rank 0 right now (a fresh start)
        return None
    if state.get("finished"):
        return None  # a complete run: a new `dvc repro`/`facedet run train` is a new run
    if state.get("config_hash") != key:
        log.info("not resuming %s: made with another configuration, data or code", last)
        return None
    try:
        MlflowClient(tracking_uri(cfg)).get_run(state["run_id"])
        # weights_only: tensors and primitive types only, never arbitrary pickled objects.
        epoch = int(torch.load(last, map_location="cpu", weights_only=True)["epoch"])
    except Exception as err:  # the MLflow run is gone, the checkpoint is unreadable
        log.warning("not resuming %s: %s", last, err)
        return None
    return state["run_id"], last, epoch


def run(cfg: DictConfig) -> None:
    out = Path(cfg.paths.train)
    checkpoints = out / "checkpoints"
    pl.seed_everything(cfg.seed, workers=True)
    net = build_net(cfg.model)
    size = cfg.model.input_size
    train_set = FaceDataset(Path(cfg.paths.augment) / "train.json", Path(cfg.paths.augment) / "images", size, net.resize)
    val_set = FaceDataset(Path(cfg.paths.labels) / "val.json", Path(cfg.paths.collect) / "images", size, net.resize)
    loader = dict(batch_size=cfg.train.batch_size, num_workers=cfg.train.num_workers, collate_fn=collate)
    module = FaceDetectorModule(net, build_loss(cfg.loss), cfg.train.lr, cfg.train.weight_decay,
                                cfg.train.max_epochs, cfg.evaluate.threshold or 0.5)

    # best.ckpt: the epoch of best val AP@0.5. last.ckpt: every epoch (what a killed run resumes from;
    # ModelCheckpoint's save_last only writes it when a new best was saved). Fixed names, no -v1 copies;
    # best before last, so that last.ckpt holds the best-checkpoint state of its epoch.
    checkpoint = ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val/ap50", mode="max",
                                 enable_version_counter=False)
    last = ModelCheckpoint(dirpath=checkpoints, filename="last", enable_version_counter=False)
    trainer = pl.Trainer(max_epochs=cfg.train.max_epochs, accelerator=cfg.train.accelerator,
                         strategy=cfg.train.get("strategy", "auto"), devices=cfg.train.get("devices", 1),
                         num_nodes=cfg.train.get("num_nodes", 1), deterministic=True,
                         callbacks=[checkpoint, last, EpochSeed(cfg.seed)], log_every_n_steps=1,
                         enable_model_summary=False, limit_train_batches=cfg.train.limit_train_batches)
    key = fingerprint(cfg)
    resume = resume_point(cfg, checkpoints, key)
    run_id = None
    if trainer.is_global_zero:
        if resume is None:
            shutil.rmtree(checkpoints, ignore_errors=True)  # a new run, not a continuation of old ones
            checkpoints.mkdir(parents=True)
            run_id = tracking.start_run(cfg, run_name=f"{cfg.model.name}")
            (checkpoints / RESUME_FILE).write_text(json.dumps({"run_id": run_id, "config_hash": key}) + "\n")
        else:
            run_id = resume[0]
            log.info("resuming MLflow run %s from %s (epoch %d done)", run_id, resume[1], resume[2] + 1)
        (out / "run.json").write_text(json.dumps({"run_id": run_id, "config_hash": key}) + "\n")
    # Rank-zero-only in Lightning: the other ranks never touch MLflow.
    trainer.logger = MLFlowLogger(tracking_uri=tracking_uri(cfg), run_id=run_id)
    trainer.fit(module, DataLoader(train_set, sampler=EpochShuffle(train_set, cfg.seed), **loader),
                DataLoader(val_set, **loader), ckpt_path=str(resume[1]) if resume else None, weights_only=True)
    if not trainer.is_global_zero:
        return

    best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(best)
    net = module.net.eval()
    threshold, val_f1 = best_f1_threshold(_val_curve(net, cfg))
    threshold = 0.5 if threshold != threshold else round(threshold, 4)  # nan: no face in val
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    weights.save(net, model_cfg, out / "model.safetensors", threshold=threshold, mlflow_run_id=run_id)
    # The last epoch's values; from the MLflow run where this process trained no epoch itself (resumed
    # from a checkpoint of the last epoch, killed while logging the model).
    logged = MlflowClient(tracking_uri(cfg)).get_run(run_id).data.metrics
    summary = {key: value for key, value in logged.items() if key.startswith(("train/", "val/"))}
    summary.update({key: float(value) for key, value in trainer.callback_metrics.items()})
    summary.update({"best/val_ap50": float(checkpoint.best_model_score), "best/val_f1": val_f1,
                    "best/threshold": threshold})

    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({k: v for k, v in summary.items() if k.startswith("best/")})
        mlflow.log_artifact(str(out / "model.safetensors"), "weights")
        mlflow.log_artifacts(str(checkpoints), "checkpoints")
        example = torch.rand(1, 3, size, size)
        predictor = Predictor(net).eval()
        with torch.no_grad():
            output = predictor(example).numpy()
        mlflow.pytorch.log_model(predictor, name="model", input_example=example.numpy(),
                                 signature=infer_signature(example.numpy(), output))
    registry = tracking.register(cfg, run_id)
    summary.update({"registry/version": registry["version"], "registry/champion": float(registry["champion"])})
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    (checkpoints / RESUME_FILE).write_text(json.dumps({"run_id": run_id, "config_hash": key,
                                                       "finished": True}) + "\n")


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
