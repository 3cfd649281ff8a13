"""Stage 4, train: the configured network and loss with Lightning; every run in MLflow.

Reads the training set (online, the default: the labels stage's train split and the collected
images, augmented afresh every epoch by ``paths.augment``/pipeline.yaml; offline, ``augment.copies > 0``:
the augment stage's materialised copies) and the validation split. Writes ``paths.train``/model.safetensors
(the epoch with the best validation AP@0.5, with the score threshold of best validation F1 in its
metadata), checkpoints/{best,last}.ckpt, metrics.json and run.json (the MLflow run the evaluate stage
continues). The logged model is registered as a new version of ``facedet`` in MLflow.

Trainer, optimiser, schedule and callbacks are built from conf/trainer, conf/optimizer, conf/scheduler
and conf/callbacks (``hydra.utils.instantiate``); ``train.init`` starts from a model file's weights.

**Resume.** ``last.ckpt`` is written after every epoch, and ``run.json`` (beside ``checkpoints/``, kept
by DVC) records the MLflow run and a fingerprint of the train stage's params, data and code (as
dvc.yaml lists them). A killed run continues from ``last.ckpt`` into the same MLflow run when
``train.resume`` is true and the fingerprint is the same; anything else starts afresh. The shuffle,
the augmented draws and the RNGs are functions of (seed, epoch[, index]), so the resumed run ends
with the same metrics.

**Several processes (DDP).** ``train.strategy``/``train.devices``/``train.num_nodes`` go to the Lightning
Trainer. Only global rank 0 creates the MLflow run, deletes/writes files and logs; the other ranks only
train (the MLflow logger is rank-zero-only in Lightning, so they need no run id).
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from facedet import quiet
from facedet.loss import build_loss
from facedet.model import build_net
from facedet.problems import DataError
from facedet.tracking import Tracker
from facedet.tracking.lightning import RunLogger
from facedet.training import augment, publish, resume
from facedet.training.data import FaceDataModule
from facedet.training.finetune import load_initial_weights
from facedet.training.module import EpochLines, FaceDetectorModule

LOCK_FILE = ".facedet.lock"


class ValidateLastEpoch(pl.Callback):
    """Validate every ``every`` epochs and after the last one, whatever the two numbers: a run of
    ``train.max_epochs=2`` with ``train.val_every=5`` validates (and can keep) its second epoch.
    Lightning's ``check_val_every_n_epoch`` alone would skip a last epoch that is no multiple."""

    def __init__(self, every: int) -> None:
        self.every = int(every)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx: int) -> None:
        # Not on_train_epoch_start: Lightning skips it for the first epoch after a resume. The last
        # epoch gets its own number as the interval (not 1, which would make the checkpoint callbacks
        # save before validating).
        epoch = trainer.current_epoch + 1
        trainer.check_val_every_n_epoch = epoch if epoch == trainer.max_epochs else self.every


def datamodule(cfg: DictConfig, net: nn.Module) -> FaceDataModule:
    augmented, labels, images = Path(cfg.paths.augment), Path(cfg.paths.labels), Path(cfg.paths.collect) / "images"
    online = int(cfg.augment.copies) == 0
    train_coco, train_images = (
        (labels / "train.json", images) if online else (augmented / "train.json", augmented / "images")
    )
    return FaceDataModule(
        train_coco,
        train_images,
        labels / "val.json",
        images,
        net.input_size,
        net.detect_size,
        net.resize,
        cfg.train.batch_size,
        augmented / augment.PIPELINE_FILE if online else None,
        seed=cfg.seed,
        min_face=cfg.augment.min_face,
        num_workers=cfg.train.num_workers,
        pin_memory=cfg.train.pin_memory,
    )


def run(
    cfg: DictConfig, callbacks: list | tuple = (), run_tags: dict[str, str] | None = None, root: Path | None = None
) -> None:
    """The train stage; ``callbacks``: extra Lightning callbacks (the sweep's pruning callback);
    ``run_tags``: extra tags of a new MLflow run (a sweep trial's); ``root``: the project (default: the
    one at or above the current folder)."""
    out = Path(cfg.paths.train)
    quiet.silence_library_notices()
    pl.seed_everything(cfg.seed, workers=True)
    tracker = Tracker.for_config(cfg, root)
    net = build_net(cfg.model)
    if cfg.train.init:
        load_initial_weights(net, cfg.model, str(cfg.train.init), tracker)
    data = datamodule(cfg, net)
    module = FaceDetectorModule(
        net,
        build_loss(cfg.loss),
        instantiate(cfg.optimizer),
        instantiate(cfg.scheduler) if cfg.scheduler else None,
        cfg.evaluate.threshold or 0.5,
        cfg.train.trainable,
    )
    configured = {name: instantiate(spec) for name, spec in cfg.callbacks.items() if spec}
    if cfg.train.trainable == "landmarks":
        # Only the landmark branch learns, so val/ap50 never moves: the best epoch is the one with the
        # lowest val/loss, whose only moving term is the landmarks'.
        configured["best_checkpoint"] = instantiate(cfg.callbacks.best_checkpoint, monitor="val/loss", mode="min")
    terminal = sys.stderr.isatty()
    extra = [
        ValidateLastEpoch(cfg.train.val_every),
        resume.MovedCheckpoints(),
        *callbacks,
        *([] if terminal else [EpochLines()]),
    ]
    # The MLflow logger is attached below, once rank 0 has its run: no default logger meanwhile.
    trainer = instantiate(
        cfg.trainer, callbacks=[*configured.values(), *extra], logger=False, enable_progress_bar=terminal
    )

    with sole_trainer(out) if trainer.is_global_zero else nullcontext():
        key = resume.fingerprint(cfg, root)
        point = resume.resume_point(cfg, out, key, tracker)
        run_id = None
        if trainer.is_global_zero:  # writes run.json
            run_id = resume.open_run(cfg, out, key, point, tracker, str(cfg.model.name), run_tags)
        trainer.logger = RunLogger(tracker, run_id)  # rank-zero-only
        with tracker.failed_on_error(run_id) if run_id else nullcontext(), warnings.catch_warnings():
            if point:  # the checkpoints there are the ones this run continues (a new run empties the folder)
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            if cfg.train.trainable == "landmarks":  # the frozen part is in eval mode on purpose
                warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
            trainer.fit(module, datamodule=data, ckpt_path=str(point[1]) if point else None, weights_only=True)
            if trainer.is_global_zero:
                _publish(cfg, trainer, module, configured["best_checkpoint"], tracker, run_id, key)


@contextmanager
def sole_trainer(out: Path) -> Iterator[None]:
    """An exclusive lock on ``out``/.facedet.lock while training there: a second trainer on the same
    outputs (a second ``dvc repro``, a leftover process) is refused in one line instead of sharing
    the checkpoints and the MLflow run. The kernel releases the lock with the process, however it ends."""
    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise DataError(f"{out} is being trained by {holder}: wait for it to end, or stop it") from None
    try:
        handle.truncate(0)
        handle.write(f"process {os.getpid()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})")
        handle.flush()
        yield
    finally:
        handle.close()


def _publish(
    cfg: DictConfig,
    trainer: pl.Trainer,
    module: FaceDetectorModule,
    best,
    tracker: Tracker,
    run_id: str,
    key: str,
) -> None:
    out = Path(cfg.paths.train)
    net = publish.best_network(module, Path(best.best_model_path))
    threshold, val_f1 = publish.validation_threshold(
        net, Path(cfg.paths.labels) / "val.json", Path(cfg.paths.collect) / "images", cfg.evaluate.iou_threshold
    )
    summary = {name: float(value) for name, value in trainer.callback_metrics.items()}
    best_ap50 = best.best_model_score if best.monitor == "val/ap50" else trainer.callback_metrics["val/ap50"]
    summary.update({"best/val_ap50": float(best_ap50), "best/val_f1": val_f1, "best/threshold": threshold})
    augmented = Path(cfg.paths.augment)
    summary = publish.publish(
        cfg,
        net,
        tracker,
        run_id,
        summary,
        [augmented / augment.PIPELINE_FILE, augmented / "preview.png", augmented / "stats.json"],
    )
    resume.mark_finished(out, run_id, key)
    registered = summary.get("registry/version")
    print(
        f"train: best val AP@0.5 {summary['best/val_ap50']:.4f} at threshold {summary['best/threshold']:.3f}; "
        f"{'registered as facedet version ' + str(registered) if registered else 'not registered'}; "
        f"run {tracker.run_link(run_id)}"
    )
