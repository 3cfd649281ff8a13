"""Hyperparameter sweeps: Optuna picks settings, the pipeline's own stages run each trial, MLflow records it.

``facedet sweep [hparams_search=sample_optuna] [OVERRIDES...]`` composes conf/ with the search config
``conf/hparams_search/<name>.yaml`` (key ``hparams_search``) and the overrides, which apply to every
trial. Each trial is the composed config plus the values Optuna suggests for ``hparams_search.params``
(Hydra's sweep syntax: ``interval``, ``int(interval)``, ``tag(log, interval)``, ``range``, ``choice``); it runs collect,
labels, augment, train (and evaluate) in-process with its ``paths.*`` under ``multirun/<name>/trial_<k>/``.
A stage whose settings (its param keys in dvc.yaml) equal an earlier trial's (collect, labels and often
augment) reuses that trial's outputs instead of running again.

The study lives in Optuna's storage (``hparams_search.storage``; default SQLite
``multirun/optuna.db``): the same command again resumes it until it holds ``n_trials`` complete or
pruned trials, and several processes given the same storage share its trials (heartbeats notice a
dead process: its trial is marked failed and another takes its place). ``PruneOnValidation``
reports each epoch's validation AP to Optuna's MedianPruner and stops a trial that falls behind.

The objective is the trial's *validation* metric (``metric``, a key of ``<paths.train>/metrics.json``,
by default ``best/val_ap50``); test metrics are refused.

MLflow: one parent run per sweep (tags: the sweep's name, search space, metric; at the end the best
value, trial, run and params) and one child run per trial (the train stage's run, tagged
``mlflow.parentRunId`` through ``tracking.extra_tags``). The best trial's settings are written as the
git-ignored preset ``conf/experiment/<write_experiment>.yaml``: ``facedet run train experiment=best``,
``dvc exp run -S experiment=best``.

Why not hydra-optuna-sweeper: its newest release (1.3.0) pins optuna<3 (2.10.1), whose RDB storage
fails with the SQLAlchemy 2 that MLflow needs, and it needs a ``@hydra.main`` app, while the stages
here take a composed config. The search config keeps that plugin's ``params`` syntax.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from facedet.config import ConfigError, compose_config, derived_keys, project_root, stage_specs, tracking_uri

log = logging.getLogger(__name__)

DEFAULT_SEARCH = "sample_optuna"
# Groups that never go into a written preset's defaults list (a preset cannot select presets).
NOT_PRESET_GROUPS = ("experiment", "hparams_search")
# The stages a trial may take from an earlier trial (their settings unchanged), in pipeline order.
REUSABLE_STAGES = ("collect", "labels", "augment")


def reusable_keys(root: Path) -> dict[str, tuple[str, ...]]:
    """Stage -> the config keys its outputs depend on, from dvc.yaml (paths of other stages left out:
    a trial's own paths differ; each stage also depends on the stages before it)."""
    specs = stage_specs(root)
    return {
        stage: tuple(k for k in specs[stage].params if not k.startswith("paths.") or k == "paths.data")
        for stage in REUSABLE_STAGES
    }


# run_stage(name, cfg, callbacks): callbacks are Lightning callbacks for the train stage's Trainer.
StageRunner = Callable[[str, DictConfig, "list | tuple"], None]


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


# ----------------------------------------------------------------------------------------------
# The search space


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(overrides of the search config ``hparams_search...``, overrides of the pipeline config)."""
    search, base = [], []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        (search if key == "hparams_search" or key.startswith("hparams_search.") else base).append(item)
    if not any(item.split("=", 1)[0].lstrip("+") == "hparams_search" for item in search):
        search.insert(0, f"hparams_search={DEFAULT_SEARCH}")
    return search, base


def parse_space(params: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """(key -> Optuna distribution, key -> fixed value) from ``hparams_search.params``."""
    import optuna.distributions as D
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    parser = OverridesParser.create()
    space: dict[str, object] = {}
    fixed: dict[str, object] = {}
    for key, text in params.items():
        try:
            override = parser.parse_override(f"{key}={text}")
        except Exception as err:
            raise ConfigError(f"config key 'hparams_search.params.{key}' = {text!r}: {err}") from None
        value = override.value()
        where = f"config key 'hparams_search.params.{key}' = {text!r}"
        if not override.is_sweep_override():
            fixed[key] = value
        elif isinstance(value, ChoiceSweep):
            space[key] = D.CategoricalDistribution([_plain(v) for v in value.list])
        elif isinstance(value, IntervalSweep):
            log_scale = "log" in value.tags
            if value.start >= value.end:
                raise ConfigError(f"{where}: expected interval(low, high) with low < high")
            if isinstance(value.start, int) and isinstance(value.end, int):
                space[key] = D.IntDistribution(int(value.start), int(value.end), log=log_scale)
            else:
                space[key] = D.FloatDistribution(float(value.start), float(value.end), log=log_scale)
        elif isinstance(value, RangeSweep):
            start, stop, step = value.start, value.stop, value.step or 1
            count = math.ceil((stop - start) / step)
            if count < 1:
                raise ConfigError(f"{where}: an empty range")
            last = round(start + (count - 1) * step, 12)
            if all(isinstance(v, int) for v in (start, stop, step)):
                space[key] = D.IntDistribution(int(start), int(last), step=int(step))
            else:
                space[key] = D.FloatDistribution(float(start), float(last), step=float(step))
        else:
            raise ConfigError(f"{where}: expected interval(...), tag(log, interval(...)), range(...) or choice(...)")
    if not space:
        raise ConfigError("config key 'hparams_search.params': nothing to search (no interval/range/choice)")
    return space, fixed


def _plain(value: object) -> object:
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)


def override_text(key: str, value: object) -> str:
    """``key=value`` in Hydra's override grammar (strings quoted, floats exact)."""
    if isinstance(value, str):
        return f"{key}={json.dumps(value)}"
    if value is None:
        return f"{key}=null"
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    return f"{key}={value!r}"


def trial_overrides(values: dict[str, object], conf_dir: Path) -> list[str]:
    """The overrides that set ``values``: ``group=option`` for a config group (``callbacks=ema``),
    :func:`override_text` for a value."""
    return [f"{k}={v}" if (conf_dir / k).is_dir() else override_text(k, v) for k, v in values.items()]


# ----------------------------------------------------------------------------------------------
# Trials


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _section(cfg: DictConfig, key: str) -> object:
    node = OmegaConf.select(cfg, key, default=None)
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


class TrialRunner:
    """Runs the stages of one trial; remembers (in the Optuna study, so that a resumed sweep and the
    other processes of a sweep know it too) which trial made each stage's outputs for which settings."""

    def __init__(self, root: Path, sweep_dir: Path, evaluate: bool, run_stage: StageRunner, study) -> None:
        self.root, self.sweep_dir, self.evaluate, self.run_stage = root, sweep_dir, evaluate, run_stage
        self.study, self.keys = study, reusable_keys(root)
        self._pending: list[tuple[str, str]] = []  # (stage, settings digest) this trial makes

    def configure(self, cfg: DictConfig, trial: int) -> tuple[DictConfig, list[str]]:
        """The trial's config with absolute per-trial paths; the stages it must run (others reused)."""
        cfg = cfg.copy()
        data = Path(cfg.paths.data)
        cfg.paths.data = str(data if data.is_absolute() else self.root / data)
        results = self.sweep_dir / f"trial_{trial}" / "results"
        made = self.study.user_attrs
        to_run, chain = [], ""
        for stage, keys in self.keys.items():
            chain = _digest(chain, stage, [_section(cfg, k) for k in keys])
            earlier = made.get(f"made.{chain}")
            if earlier and Path(earlier).is_dir():
                cfg.paths[stage] = earlier
            else:
                cfg.paths[stage] = str(results / stage)
                to_run.append((stage, chain))
        cfg.paths.train, cfg.paths.evaluate = str(results / "train"), str(results / "evaluate")
        # Every run of the sweep in one store, also when the trial's config names none.
        cfg.tracking.uri = tracking_uri(cfg)
        self._pending = to_run
        return cfg, [s for s, _ in to_run] + ["train"] + (["evaluate"] if self.evaluate else [])

    def run(self, cfg: DictConfig, stages: list[str], callbacks: list) -> None:
        pending = dict(self._pending)
        for stage in stages:
            started = time.perf_counter()
            self.run_stage(stage, cfg, callbacks if stage == "train" else ())
            log.info("  %s: %.1f s", stage, time.perf_counter() - started)
            if stage in pending:
                self.study.set_user_attr(f"made.{pending[stage]}", str(cfg.paths[stage]))


# ----------------------------------------------------------------------------------------------
# The written preset


def _group_overrides(overrides: list[str], conf_dir: Path) -> list[tuple[str, str]]:
    """(group, choice) for the overrides that select a config group (``model=dense``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    chosen = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if (conf_dir / key).is_dir() and not override.is_delete() and key not in NOT_PRESET_GROUPS:
            chosen.append((key, str(override.value())))
    return chosen


def _diff(new: object, old: object) -> object:
    """The parts of `new` that differ from `old` (dicts by key; anything else, lists too, whole)."""
    if isinstance(new, dict) and isinstance(old, dict):
        out = {}
        for key, value in new.items():
            if key not in old:
                out[key] = value
            else:
                sub = _diff(value, old[key])
                if sub is not _SAME:
                    out[key] = sub
        return out or _SAME
    return _SAME if new == old else new


_SAME = object()


def preset_text(best: DictConfig, base_overrides: list[str], root: Path, header: str) -> str:
    """An ``# @package _global_`` preset that turns the default config into `best` (paths excepted)."""
    groups = _group_overrides(base_overrides, root / "conf")
    reference = compose_config([f"{g}={c}" for g, c in groups], root=root)
    new = OmegaConf.to_container(best, resolve=True)
    old = OmegaConf.to_container(reference, resolve=True)
    for cfg in (new, old):
        for key in ("paths", "hparams_search"):
            cfg.pop(key, None)
        cfg.get("tracking", {}).pop("uri", None)
    for key in derived_keys(root / "conf"):  # they follow the keys they interpolate
        for cfg in (new, old):
            parent, _, leaf = key.rpartition(".")
            node = cfg
            for part in parent.split(".") if parent else []:
                node = node.get(part, {}) if isinstance(node, dict) else {}
            if isinstance(node, dict):
                node.pop(leaf, None)
    changes = _diff(new, old)
    body: dict[str, object] = {}
    if groups:
        body["defaults"] = [{f"override /{g}": c} for g, c in groups]
    if changes is not _SAME:
        body.update(changes)
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return "# @package _global_\n" + lines + yaml.safe_dump(body, sort_keys=False)


# ----------------------------------------------------------------------------------------------
# The sweep


def sweep(run_stage: StageRunner, overrides: list[str] | None = None, root: Path | None = None) -> SweepResult:
    """Run the sweep described by ``hparams_search`` (see the module doc); returns the best trial.
    Works from the project root (`root`, default: the one at or above the current folder).
    ``run_stage(name, cfg)`` runs one pipeline stage (:func:`facedet.pipeline.run_stage`; the apps
    band does not import the pipeline band, the command wires them)."""
    root = project_root(root)
    before = Path.cwd()
    os.chdir(root)  # the stages and the MLflow tags (git, data.dvc) read the project from the cwd
    try:
        return _sweep(run_stage, overrides, root)
    finally:
        os.chdir(before)


def _sweep(run_stage: StageRunner, overrides: list[str] | None, root: Path) -> SweepResult:
    import mlflow
    import optuna
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from facedet import tracking

    started = time.perf_counter()
    search_overrides, base = split_overrides(list(overrides or []))
    composed = compose_config([*base, *search_overrides], root=root)
    spec = composed.hparams_search
    metric = str(spec.get("metric", "best/val_ap50"))
    if any(part.startswith("test") for part in metric.split("/")):
        raise ConfigError(
            f"config key 'hparams_search.metric' = {metric!r}: expected a validation metric "
            "(choosing on the test split would leak it)"
        )
    direction = str(spec.get("direction", "maximize"))
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"config key 'hparams_search.direction' = {direction!r}: expected maximize or minimize")
    n_trials = spec.get("n_trials")
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"config key 'hparams_search.n_trials' = {n_trials!r}: expected a positive integer")
    name = str(spec.get("name") or search_overrides[0].split("=", 1)[1])
    params = OmegaConf.to_container(spec.params, resolve=True) if spec.get("params") else {}
    space, fixed = parse_space(params)
    base = [*base, *trial_overrides(fixed, root / "conf")]

    def trial_config(values: dict[str, object]) -> DictConfig:
        return compose_config([*base, *trial_overrides(values, root / "conf")], root=root)

    # Fail before any work on a key or value the config rejects (at both ends of each range).
    for pick in (0, -1):
        trial_config(
            {
                k: (
                    d.choices[pick]
                    if isinstance(d, optuna.distributions.CategoricalDistribution)
                    else (d.low, d.high)[pick]
                )
                for k, d in space.items()
            }
        )

    sweep_dir = root / "multirun" / name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    storage_url = str(spec.get("storage") or f"sqlite:///{root / 'multirun' / 'optuna.db'}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats: a trial whose process died (killed sweep, lost machine) is marked FAILED by the next
    # process that looks (at its next trial, and when it ends), its MLflow run KILLED; the finished-trial
    # count then asks for another trial in its place. Heartbeats are "experimental" in Optuna 4.9
    # (there since 2.8): chosen, so their notice is not shown.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    def stale(study, trial) -> None:
        _fail_child(
            MlflowClient(tracking_uri(composed)),
            composed,
            study.user_attrs.get("mlflow_parent_run_id", ""),
            trial.number,
            "KILLED",
        )

    storage = optuna.storages.RDBStorage(
        storage_url, heartbeat_interval=10, grace_period=30, heartbeat_stale_trial_callback=stale
    )
    sampler = optuna.samplers.TPESampler(seed=spec.get("seed"), n_startup_trials=int(spec.get("startup_trials", 10)))
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=int(spec.get("startup_trials", 10)), n_warmup_steps=int(spec.get("prune_warmup_epochs", 2))
        )
        if spec.get("prune", True)
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=storage, study_name=name, direction=direction, sampler=sampler, pruner=pruner, load_if_exists=True
    )
    search_space = {k: str(v) for k, v in params.items()}
    settings = json.dumps({"space": search_space, "overrides": base, "metric": metric}, sort_keys=True)
    if study.user_attrs.setdefault("settings", settings) != settings and study.user_attrs.get("settings"):
        raise ConfigError(
            f"config key 'hparams_search.name' = {name!r}: the study {name!r} in {storage_url} was made "
            f"with another search space, overrides or metric; give another name "
            f"(hparams_search.name=...) or delete it: optuna delete-study --study-name {name} "
            f"--storage {storage_url}"
        )
    study.set_user_attr("settings", settings)
    # A resumed study, or a second process on it, must not draw the first one's sequence again.
    trials_so_far = study.get_trials(deepcopy=False)
    others = any(t.state == optuna.trial.TrialState.RUNNING for t in trials_so_far)
    if spec.get("seed") is not None and (trials_so_far or others):
        seed = int(spec.seed) + len(trials_so_far) + (os.getpid() if others else 0)
        study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(spec.get("startup_trials", 10)))
    runner = TrialRunner(root, sweep_dir, bool(spec.get("evaluate", True)), run_stage, study)

    base_cfg = trial_config({})
    uri = tracking_uri(base_cfg)
    client = MlflowClient(uri)
    parent_id = study.user_attrs.get("mlflow_parent_run_id")
    if parent_id is None:  # a new study; a resumed one (or another process of it) continues its parent run
        parent_id = client.create_run(
            tracking.experiment_id(base_cfg),
            run_name=f"sweep {name}",
            tags={
                **tracking.run_tags(),
                "sweep.name": name,
                "sweep.role": "parent",
                "sweep.storage": storage_url,
                "sweep.search_space": json.dumps(search_space),
                "sweep.metric": metric,
                "sweep.direction": direction,
                "sweep.overrides": " ".join(base),
            },
        ).info.run_id
        study.set_user_attr("mlflow_parent_run_id", parent_id)
        client.log_batch(
            parent_id,
            params=[
                Param("sweep.n_trials", str(n_trials)),
                Param("sweep.metric", metric),
                *(Param(f"space.{k}", v[:6000]) for k, v in search_space.items()),
            ],
        )
        client.log_text(
            parent_id,
            yaml.safe_dump(
                {"hparams_search": OmegaConf.to_container(spec, resolve=True), "overrides": base}, sort_keys=False
            ),
            "sweep.yaml",
        )
    else:
        client.update_run(parent_id, status="RUNNING")
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done_before = len(study.get_trials(deepcopy=False, states=counted))
    log.info(
        "sweep %s: %d of %d trials done, %s %s over %s; study %s; MLflow parent run %s in %s",
        name,
        done_before,
        n_trials,
        direction,
        metric,
        ", ".join(space),
        storage_url,
        parent_id,
        uri,
    )

    def objective(trial: optuna.Trial) -> float:
        values = {key: _suggest(trial, key, dist) for key, dist in space.items()}
        k = trial.number
        cfg, stages = runner.configure(trial_config(values), k)
        (sweep_dir / f"trial_{k}").mkdir(parents=True, exist_ok=True)
        (sweep_dir / f"trial_{k}" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        log.info("trial %d: %s (runs %s)", k, " ".join(trial_overrides(values, root / "conf")), ", ".join(stages))
        tags = {
            "mlflow.parentRunId": parent_id,
            "sweep.name": name,
            "sweep.trial": str(k),
            "sweep.values": json.dumps(values),
        }
        pruning = PruneOnValidation(trial, metric.split("/", 1)[-1] if metric.startswith("best/") else metric)
        t0 = time.perf_counter()
        try:
            with tracking.extra_tags(tags):
                runner.run(cfg, stages, [pruning])
        except BaseException as err:
            _fail_child(client, cfg, parent_id, k, "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
            if not isinstance(err, KeyboardInterrupt):
                log.error("trial %d failed:\n%s", k, traceback.format_exc())
            raise
        train_dir = Path(cfg.paths.train)
        run_id = json.loads((train_dir / "run.json").read_text())["run_id"]
        trial.set_user_attr("run_id", run_id)
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
        metrics = json.loads((train_dir / "metrics.json").read_text())
        if metric not in metrics:
            raise ConfigError(
                f"config key 'hparams_search.metric' = {metric!r}: not in {train_dir}/metrics.json "
                f"(keys: {', '.join(sorted(metrics))})"
            )
        value = float(metrics[metric])
        client.set_tag(run_id, "sweep.objective", str(value))
        now = int(time.time() * 1000)
        client.log_metric(parent_id, f"trial/{metric}", value, now, k)
        if pruning.pruned_at is not None:
            client.set_tag(run_id, "sweep.pruned", f"after epoch {pruning.pruned_at}")
            log.info(
                "trial %d: pruned after epoch %d (%s %.4f below the median of earlier trials)",
                k,
                pruning.pruned_at,
                pruning.monitor,
                pruning.last,
            )
            raise optuna.TrialPruned()
        log.info("trial %d: %s = %.4f (%.0f s)", k, metric, value, time.perf_counter() - t0)
        return value

    status = "FAILED"
    try:
        # Until the study holds n_trials complete or pruned trials, whichever process ran them.
        study.optimize(
            objective,
            n_trials=max(n_trials - done_before, 0),
            catch=(Exception,),
            callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=counted)],
        )
        optuna.storages.fail_stale_trials(study)  # e.g. the trial of a process killed before this one resumed
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not done:
            raise RuntimeError(f"sweep {name}: no trial completed (see the log above)")
        best = study.best_trial
        best_run = best.user_attrs.get("run_id")
        best_cfg = trial_config(best.params)
        experiment_file = None
        if spec.get("write_experiment"):
            experiment_file = root / "conf" / "experiment" / f"{spec.write_experiment}.yaml"
            use = spec.write_experiment
            header = "\n".join(
                [
                    f"Written by `facedet sweep` ({name}): trial {best.number} of {n_trials}, {metric} = {best.value:.4f}",
                    f"(MLflow run {best_run}, parent run {parent_id}); generated, git-ignored.",
                    "Searched: " + " ".join(trial_overrides(best.params, root / "conf")),
                    f"Use: facedet run STAGE experiment={use}   or   dvc exp run -S experiment={use}",
                ]
            )
            experiment_file.parent.mkdir(parents=True, exist_ok=True)
            searched = trial_overrides(best.params, root / "conf")  # a searched group goes to its defaults
            experiment_file.write_text(preset_text(best_cfg, [*base, *searched], root, header))
            client.log_artifact(parent_id, str(experiment_file), "experiment")
        client.log_batch(
            parent_id,
            metrics=[Metric(tracking.result_metric(metric), best.value, int(time.time() * 1000), 0)],
            params=[
                Param(f"best.{k}", str(v))
                for k, v in best.params.items()
                if f"best.{k}" not in client.get_run(parent_id).data.params
            ],
        )
        finished = study.get_trials(deepcopy=False, states=counted)
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
        for key, value in {
            "sweep.best_value": str(best.value),
            "sweep.best_trial": str(best.number),
            "sweep.best_run_id": str(best_run),
            "sweep.best_params": json.dumps(best.params),
            "sweep.completed": str(len(done)),
            "sweep.pruned": str(len(finished) - len(done)),
        }.items():
            client.set_tag(parent_id, key, value)
        (sweep_dir / "trials.json").write_text(json.dumps(trials, indent=1) + "\n")
        seconds = time.perf_counter() - started
        client.log_metric(parent_id, tracking.result_metric("sweep/seconds"), seconds)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        client.set_terminated(parent_id, status)
    result = SweepResult(
        name=name,
        metric=metric,
        best_value=float(best.value),
        best_params=dict(best.params),
        best_trial=best.number,
        best_run_id=best_run,
        parent_run_id=parent_id,
        trials=trials,
        experiment_file=experiment_file,
        seconds=seconds,
        storage=storage_url,
    )
    mlflow.set_tracking_uri(uri)
    return result


def _pruning_callback_base():
    import pytorch_lightning as pl

    return pl.Callback


class PruneOnValidation(_pruning_callback_base()):
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


def _suggest(trial, key: str, dist) -> object:
    import optuna.distributions as D

    if isinstance(dist, D.CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, D.IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def _fail_child(client, cfg: DictConfig, parent_id: str, trial: int, status: str) -> None:
    """End the failed or interrupted trial's MLflow run (if the train stage got to create it)."""
    try:
        exp = client.get_experiment_by_name(cfg.tracking.experiment)
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string=(f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`sweep.trial` = '{trial}'"),
        )
        for run in runs:
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, status)
    except Exception as err:  # bookkeeping only: never hide the trial's own error
        log.warning("could not mark trial %d's MLflow run as failed: %s", trial, err)
