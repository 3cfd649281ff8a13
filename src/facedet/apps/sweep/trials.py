"""Running one trial: its stages (dvc.yaml's, in its order), each trial's outputs in a folder of its
own, outputs of an earlier trial with the same settings reused, the pruning callback."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from facedet.stages import stage_specs

log = logging.getLogger(__name__)

TRAIN, EVALUATE = "train", "evaluate"

# run_stage(name, cfg, callbacks=..., run_tags=..., root=...): facedet.pipeline.run_stage (the apps
# band does not import the pipeline band; the command wires them).
StageRunner = Callable[..., None]


def trial_stages(root: Path, evaluate: bool) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """(stage -> the config keys its outputs depend on, for the stages before train that a trial may
    take from an earlier trial; the stages after them a trial always runs), from dvc.yaml. Left out:
    a stage that tracks the whole params file (validate: the trial configs are composed, so checked)
    and what follows train (or evaluate). Paths of other stages are not settings: a trial's own differ."""
    reusable: dict[str, tuple[str, ...]] = {}
    for name, spec in stage_specs(root).items():
        if name == TRAIN:
            break
        if not spec.all_params:
            reusable[name] = tuple(k for k in spec.params if not k.startswith("paths.") or k == "paths.data")
    return reusable, [TRAIN, *([EVALUATE] if evaluate else [])]


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _section(cfg: DictConfig, key: str) -> object:
    node = OmegaConf.select(cfg, key, default=None)
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


class TrialRunner:
    """Runs the stages of one trial; remembers (in the Optuna study, so that a resumed sweep and the
    other processes of a sweep know it too) which trial made each stage's outputs for which settings."""

    def __init__(self, root: Path, sweep_dir: Path, evaluate: bool, run_stage: StageRunner, study) -> None:
        self.root, self.sweep_dir, self.run_stage, self.study = root, sweep_dir, run_stage, study
        self.reusable, self.always = trial_stages(root, evaluate)
        self._pending: list[tuple[str, str]] = []  # (stage, settings digest) this trial makes

    def configure(self, cfg: DictConfig, trial: int, store: str) -> tuple[DictConfig, list[str]]:
        """The trial's config with absolute per-trial paths and the sweep's MLflow ``store``; the stages
        it must run (others reused)."""
        cfg = cfg.copy()
        data = Path(cfg.paths.data)
        cfg.paths.data = str(data if data.is_absolute() else self.root / data)
        results = self.sweep_dir / f"trial_{trial}" / "results"
        made = self.study.user_attrs
        to_run, chain = [], ""
        for stage, keys in self.reusable.items():
            chain = _digest(chain, stage, [_section(cfg, k) for k in keys])
            earlier = made.get(f"made.{chain}")
            if earlier and Path(earlier).is_dir():
                cfg.paths[stage] = earlier
            else:
                cfg.paths[stage] = str(results / stage)
                to_run.append((stage, chain))
        for stage in (TRAIN, EVALUATE):
            cfg.paths[stage] = str(results / stage)
        cfg.tracking.uri = store  # every run of the sweep in one store, also when the trial's config names none
        self._pending = to_run
        return cfg, [s for s, _ in to_run] + self.always

    def run(self, cfg: DictConfig, stages: list[str], callbacks: list, run_tags: dict[str, str]) -> None:
        """Run ``stages``; the train stage gets ``callbacks`` and its MLflow run ``run_tags``."""
        pending = dict(self._pending)
        for stage in stages:
            started = time.perf_counter()
            extra = {"callbacks": callbacks, "run_tags": run_tags} if stage == TRAIN else {}
            self.run_stage(stage, cfg, root=self.root, **extra)
            log.info("  %s: %.1f s", stage, time.perf_counter() - started)
            if stage in pending:
                self.study.set_user_attr(f"made.{pending[stage]}", str(cfg.paths[stage]))


class PruneOnValidation(pl.Callback):
    """Reports the trial's per-epoch validation metric (``val/ap50``) to Optuna; when the pruner says
    the trial is worse than the median of earlier trials at that epoch, training stops after this epoch
    (the run ends cleanly, with its model and metrics) and the trial is marked pruned."""

    def __init__(self, trial, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor
        self.pruned_at: int | None = None
        self.last: float = float("nan")

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        self.last = float(trainer.callback_metrics[self.monitor])
        self.trial.report(self.last, step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned_at = trainer.current_epoch + 1
            trainer.should_stop = True
