"""The sweep: the study's trials, each a run of the pipeline's stages, and what the best one gives."""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from facedet.apps.sweep.budget import COUNTED, run_trials
from facedet.apps.sweep.preset import preset_text
from facedet.apps.sweep.runs import end_trial_run, parent_run, record_best, trial_tags
from facedet.apps.sweep.space import suggest, trial_overrides
from facedet.apps.sweep.study import Search, open_study, read_search
from facedet.apps.sweep.trials import PruneOnValidation, StageRunner, TrialRunner
from facedet.config import ConfigError, project_root
from facedet.tracking import Tracker, result_metric
from facedet.tracking.backend import shown
from facedet.tracking.owners import interrupted

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    name: str
    metric: str
    best_value: float
    best_params: dict[str, object]
    best_trial: int
    best_run_id: str | None
    parent_run_id: str
    trials: list[dict[str, object]] = field(default_factory=list)
    experiment_file: Path | None = None
    seconds: float = 0.0
    storage: str = ""
    parent_link: str = ""


@dataclass
class Sweep:
    """One process's part of a sweep: the search, its study, the MLflow parent run, the trial runner."""

    search: Search
    tracker: Tracker
    study: object
    parent_id: str
    runner: TrialRunner

    def objective(self, trial) -> float:
        """Run one trial; its validation metric (Optuna's objective)."""
        import optuna

        search, k = self.search, trial.number
        values = {key: suggest(trial, key, dist) for key, dist in search.space.items()}
        cfg, stages = self.runner.configure(search.trial_config(values), k, self.tracker.uri)
        folder = search.sweep_dir / f"trial_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        shown = {key: float(f"{v:.4g}") if isinstance(v, float) else v for key, v in values.items()}  # the log only
        log.info("trial %d: %s (runs %s)", k, " ".join(trial_overrides(shown, search.root / "conf")), ", ".join(stages))
        metric = search.metric
        pruning = PruneOnValidation(trial, metric.split("/", 1)[-1] if metric.startswith("best/") else metric)
        started = time.perf_counter()
        try:
            self.runner.run(cfg, stages, [pruning], trial_tags(search, self.parent_id, k, values))
        except BaseException as err:
            stopped = interrupted(err)
            end_trial_run(self.tracker, self.parent_id, k, "KILLED" if stopped else "FAILED")
            if not stopped:
                log.error("trial %d failed:\n%s", k, traceback.format_exc())
            raise
        run_id, value = self._result(Path(cfg.paths.train), k)
        trial.set_user_attr("run_id", run_id)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
        if pruning.pruned_at is not None:
            self.tracker.set_tags(run_id, {"sweep.pruned": f"after epoch {pruning.pruned_at}"})
            log.info(
                "trial %d: pruned after epoch %d (%s %.4f below the median of earlier trials)",
                *(k, pruning.pruned_at, pruning.monitor, pruning.last),
            )
            raise optuna.TrialPruned()
        log.info("trial %d: %s = %.4f (%.0f s)", k, metric, value, time.perf_counter() - started)
        return value

    def _result(self, train_dir: Path, trial: int) -> tuple[str, float]:
        """(the trial's MLflow run, its objective value) from the train stage's run.json and metrics.json,
        recorded on both runs."""
        run_id = json.loads((train_dir / "run.json").read_text())["run_id"]
        metrics = json.loads((train_dir / "metrics.json").read_text())
        metric = self.search.metric
        if metric not in metrics:
            raise ConfigError(
                f"config key 'hparams_search.metric' = {metric!r}: not in {train_dir}/metrics.json "
                f"(keys: {', '.join(sorted(metrics))})"
            )
        value = float(metrics[metric])
        self.tracker.set_tags(run_id, {"sweep.objective": value})
        self.tracker.log_metrics(self.parent_id, {f"trial/{metric}": value}, step=trial)
        return run_id, value

    def finish(self, started: float) -> SweepResult:
        """The best trial: its preset written, recorded on the parent run and in trials.json."""
        import optuna

        search, study = self.search, self.study
        optuna.storages.fail_stale_trials(study)  # e.g. the trial of a process killed before this one resumed
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not done:
            raise RuntimeError(f"sweep {search.name}: no trial completed (see the log above)")
        best = study.best_trial
        floor = search.spec.get("write_min")
        worth = floor is None or (best.value >= floor if search.direction == "maximize" else best.value <= floor)
        if search.spec.get("write_experiment") and not worth:
            log.warning(
                "sweep %s: best %s %.4f does not reach hparams_search.write_min %g: no preset written "
                "(a setting that learns nothing, such as experiment=quick, has no best to keep)",
                *(search.name, search.metric, best.value, floor),
            )
        experiment_file = self._write_preset(best) if search.spec.get("write_experiment") and worth else None
        finished = study.get_trials(deepcopy=False, states=COUNTED)
        record_best(self.tracker, self.parent_id, search, best, finished, len(done))
        trials = [
            {
                "trial": t.number,
                "params": t.params,
                "value": t.value,
                "state": t.state.name,
                "run_id": t.user_attrs.get("run_id"),
                "seconds": t.user_attrs.get("seconds"),
            }
            for t in finished
        ]
        (search.sweep_dir / "trials.json").write_text(json.dumps(trials, indent=1) + "\n")
        seconds = time.perf_counter() - started
        self.tracker.log_metrics(self.parent_id, {result_metric("sweep/seconds"): seconds})
        return SweepResult(
            name=search.name,
            metric=search.metric,
            best_value=float(best.value),
            best_params=dict(best.params),
            best_trial=best.number,
            best_run_id=best.user_attrs.get("run_id"),
            parent_run_id=self.parent_id,
            trials=trials,
            experiment_file=experiment_file,
            seconds=seconds,
            storage=search.storage,
            parent_link=self.tracker.run_link(self.parent_id),
        )

    def _write_preset(self, best) -> Path:
        search, use = self.search, self.search.spec.write_experiment
        path = search.root / "conf" / "experiment" / f"{use}.yaml"
        searched = trial_overrides(best.params, search.root / "conf")  # a searched group goes to its defaults
        header = "\n".join(
            [
                f"Written by `facedet sweep` ({search.name}): trial {best.number} of {search.n_trials}, "
                f"{search.metric} = {best.value:.4f}",
                f"(MLflow run {best.user_attrs.get('run_id')}, parent run {self.parent_id}); generated, git-ignored.",
                "Searched: " + " ".join(searched),
                f"Use: facedet run STAGE experiment={use}   or   dvc exp run -S experiment={use}",
            ]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(preset_text(search.trial_config(best.params), [*search.base, *searched], search.root, header))
        self.tracker.log_artifact(self.parent_id, path, "experiment")
        return path


def open_sweep(run_stage: StageRunner, overrides: list[str], root: Path) -> Sweep:
    """The search, its study and parent run, ready to run trials."""
    search = read_search(overrides, root)
    search.sweep_dir.mkdir(parents=True, exist_ok=True)
    tracker = Tracker.for_config(search.trial_config({}), root)
    holder: dict[str, str] = {}

    def stale(study, trial) -> None:
        end_trial_run(tracker, holder.get("parent", ""), trial.number, "KILLED")

    study, created = open_study(search, stale)
    holder["parent"] = parent_run(tracker, search, study, created)
    runner = TrialRunner(root, search.sweep_dir, bool(search.spec.get("evaluate", True)), run_stage, study)
    return Sweep(search, tracker, study, holder["parent"], runner)


def sweep(run_stage: StageRunner, overrides: list[str] | None = None, root: Path | None = None) -> SweepResult:
    """Run the sweep described by ``hparams_search`` (see [`facedet.apps.sweep`][]); returns the best
    trial. ``root``: the project (default: the one at or above the current folder). ``run_stage``: runs
    one pipeline stage ([`facedet.pipeline.run_stage`][])."""
    started = time.perf_counter()
    job = open_sweep(run_stage, list(overrides or []), project_root(root))
    search = job.search
    done_before = len(job.study.get_trials(deepcopy=False, states=COUNTED))
    log.info(
        "sweep %s: %d of %d trials done, %s %s over %s; study %s; MLflow parent run %s in %s",
        *(search.name, done_before, search.n_trials, search.direction, search.metric, ", ".join(search.space)),
        *(shown(search.storage), job.parent_id, shown(job.tracker.uri)),
    )
    status = "FAILED"
    try:
        # Until the study holds n_trials complete or pruned trials, whichever process ran them.
        run_trials(job.study, search.storage, search.n_trials, job.objective, max(search.n_trials - done_before, 0))
        result = job.finish(started)
        status = "FINISHED"
    except BaseException as err:
        status = "KILLED" if interrupted(err) else "FAILED"
        raise
    finally:
        job.tracker.end_run(job.parent_id, status)
    return result
