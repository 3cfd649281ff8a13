"""Resuming a killed training run: a fingerprint of what a checkpoint is valid for, and the resume point.

What a checkpoint depends on is read from the train stage of ``dvc.yaml`` ([`facedet.stages.stage_specs`][]),
the one statement of the pipeline: its param keys, its data deps (every file under them) and its code
deps (every file under its ``src/`` deps, found from the installed package).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from facedet.problems import DataError
from facedet.stages import stage_spec
from facedet.tracking import Tracker

log = logging.getLogger(__name__)

# The resume record is the train stage's run.json (the MLflow run the later stages continue), kept by DVC
# (persist) beside checkpoints/: a file of ours inside checkpoints/ makes Lightning warn that the
# checkpoint directory "exists and is not empty" at the start of every training.
STATE_FILE = "run.json"
CHECKPOINTS = "checkpoints"
_SOURCE_ROOT = Path(__file__).resolve().parents[3]  # the folder holding src/facedet


def fingerprint(cfg: DictConfig, root: Path | None = None) -> str:
    """A hash of the train stage's params (values in ``cfg``), data deps and code deps."""
    spec = stage_spec("train", root)
    digest = hashlib.sha256()
    values = {
        key: OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        for key in spec.params
        for node in [OmegaConf.select(cfg, key, default=None)]
    }
    digest.update(json.dumps(values, sort_keys=True, default=str).encode())
    for dep in spec.deps:
        base = _SOURCE_ROOT if dep.startswith("src/") else Path(root or ".")
        path = base / dep
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(dep.encode() + str(file.relative_to(path) if path.is_dir() else "").encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def resume_point(cfg: DictConfig, out: Path, key: str, tracker: Tracker | None = None) -> tuple[str, Path, int] | None:
    """(MLflow run id, last.ckpt, its epoch) when the last run in ``out`` (``paths.train``) can be
    continued, else None. Reads only, so that every DDP rank comes to the same answer."""
    state_file, last = out / STATE_FILE, out / CHECKPOINTS / "last.ckpt"
    if not cfg.train.get("resume", True) or not (state_file.is_file() and last.is_file()):
        return None
    try:
        state = _read_state(state_file)
    except FileNotFoundError:  # deleted by rank 0 right now (a fresh start)
        return None
    if state.get("finished"):
        return None  # a complete run: a new `dvc repro`/`facedet run train` is a new run
    if state.get("config_hash") != key:
        log.info("not resuming %s: made with another configuration, data or code", last)
        return None
    try:
        tracker = tracker or Tracker.for_config(cfg)
        tracker.ensure_experiment()  # a moved or copied project's store is made to log where it is now
        kept = tracker.has_run(state["run_id"])
    except Exception as err:  # noqa: BLE001 - whatever the store's driver raises: it did not answer
        raise _unreachable(tracker, out, err) from None
    if not kept:
        log.warning("not resuming %s: its MLflow run %s is not in the store", last, state["run_id"])
        return None
    try:
        # weights_only: tensors and primitive types only, never arbitrary pickled objects.
        epoch = int(torch.load(last, map_location="cpu", weights_only=True)["epoch"])
    except Exception as err:  # noqa: BLE001 - an unreadable checkpoint cannot be continued
        log.warning("not resuming %s: %s", last, err)
        return None
    return state["run_id"], last, epoch


class MovedCheckpoints(pl.Callback):
    """Resuming in a moved or copied project (another absolute path: a copied folder, a ``dvc exp run``
    temporary copy). Lightning's ModelCheckpoint restores its best score and paths only when its
    folder is the one recorded in the checkpoint, else it forgets the best epoch so far (its score is
    None where no epoch is left to train) and keeps the best path of the old folder. Before the
    callbacks restore their state, the recorded folder and the paths in it become this folder's."""

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        states = checkpoint.get("callbacks") or {}
        for callback in trainer.checkpoint_callbacks:
            state = states.get(callback.state_key)
            if state and state.get("dirpath") and callback.dirpath and state["dirpath"] != callback.dirpath:
                _move_paths(state, state["dirpath"], callback.dirpath)


def _move_paths(state: dict, old: str, new: str) -> None:
    """The paths of a ModelCheckpoint state that lie in ``old``, in ``new``."""

    def moved(path: object) -> object:
        if isinstance(path, str) and path and os.path.dirname(path) == old:
            return os.path.join(new, os.path.basename(path))
        return path

    for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
        if key in state:
            state[key] = moved(state[key])
    if isinstance(state.get("best_k_models"), dict):
        state["best_k_models"] = {moved(path): score for path, score in state["best_k_models"].items()}
    state["dirpath"] = new


def _read_state(state_file: Path) -> dict:
    """run.json as written by `_write_state`; anything else is a one-line DataError, never a
    silent fresh start (which would replace the checkpoints the file belongs to)."""
    text = state_file.read_text()
    try:
        state = json.loads(text)
    except ValueError as err:
        problem = f"not JSON ({err})"
    else:
        if (
            isinstance(state, dict)
            and isinstance(state.get("run_id"), str)
            and isinstance(state.get("config_hash"), str)
        ):
            return state
        problem = "expected an object with run_id and config_hash"
    raise DataError(
        f"{state_file}: {problem}; it names the MLflow run that {state_file.parent / CHECKPOINTS} continues: "
        "put it back (dvc checkout), or delete it to start a new run there"
    )


def _unreachable(tracker: Tracker | None, out: Path, err: Exception) -> DataError:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    store = tracker.uri if tracker is not None else "(not found)"
    return DataError(
        f"the MLflow store {store} cannot be reached ({first}); nothing was deleted, the "
        f"checkpoints in {out / CHECKPOINTS} are kept: run the same command again once it answers"
    )


def open_run(
    cfg: DictConfig,
    out: Path,
    key: str,
    resume: tuple[str, Path, int] | None,
    tracker: Tracker,
    run_name: str,
    tags: dict[str, str] | None = None,
) -> str:
    """Rank 0 only: the MLflow run to train into: the resumed one, or a new one named ``run_name`` with
    ``tags`` (old checkpoints deleted, an empty checkpoints/ left for Lightning: a new run is not a
    continuation of old ones)."""
    if resume is not None:
        log.info("resuming MLflow run %s from %s (epoch %d done)", resume[0], resume[1], resume[2] + 1)
        tracker.claim_run(resume[0])  # RUNNING again (a killed run's was marked KILLED), owned by this process
        return resume[0]
    try:  # the store first: nothing is deleted before it has answered
        run_id = tracker.start_run(cfg, run_name, tags)
    except Exception as err:  # noqa: BLE001 - whatever the store's driver raises
        raise _unreachable(tracker, out, err) from None
    checkpoints = out / CHECKPOINTS
    shutil.rmtree(checkpoints, ignore_errors=True)
    checkpoints.mkdir(parents=True)
    _write_state(out, {"run_id": run_id, "config_hash": key})
    return run_id


def mark_finished(out: Path, run_id: str, key: str) -> None:
    _write_state(out, {"run_id": run_id, "config_hash": key, "finished": True})


def _write_state(out: Path, state: dict) -> None:
    """Whole or not at all (a kill midway leaves the previous record): other ranks read it meanwhile."""
    partial = out / f".{STATE_FILE}.partial"
    partial.write_text(json.dumps(state) + "\n")
    os.replace(partial, out / STATE_FILE)
