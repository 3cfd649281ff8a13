"""The search settings (``hparams_search``, checked) and the Optuna study that holds the trials."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from facedet.apps.sweep.budget import TrialSeededSampler, study_lock
from facedet.apps.sweep.space import extremes, parse_space, split_overrides, trial_overrides
from facedet.config import ConfigError, compose_config
from facedet.tracking.backend import shown
from facedet.training.finetune import check_init

HEARTBEAT_SECONDS = 10  # a trial's process records that it lives; 3 missed beats and the trial is failed


@dataclass
class Search:
    """What ``hparams_search`` and the command's overrides ask for."""

    root: Path
    name: str
    spec: DictConfig  # the composed hparams_search section
    metric: str
    direction: str
    n_trials: int
    params: dict[str, object]  # hparams_search.params as written
    space: dict[str, object]  # key -> Optuna distribution
    base: list[str]  # the overrides every trial gets (the command's, the fixed params)
    storage: str

    def trial_config(self, values: dict[str, object]) -> DictConfig:
        """The composed config of a trial with these searched values."""
        return compose_config([*self.base, *trial_overrides(values, self.root / "conf")], root=self.root)

    @property
    def sweep_dir(self) -> Path:
        return self.root / "multirun" / self.name

    @property
    def settings(self) -> str:
        """What a study is made with: resuming it with other settings is refused."""
        space = {k: str(v) for k, v in self.params.items()}
        return json.dumps({"space": space, "overrides": self.base, "metric": self.metric}, sort_keys=True)


def read_search(overrides: list[str], root: Path) -> Search:
    """The checked search settings; every key and both ends of each range composed once, so that a
    value the config rejects fails before any work."""
    search_overrides, base = split_overrides(list(overrides))
    spec = compose_config([*base, *search_overrides], root=root).hparams_search
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
    params = OmegaConf.to_container(spec.params, resolve=True) if spec.get("params") else {}
    space, fixed = parse_space(params)
    search = Search(
        root=root,
        name=str(spec.get("name") or search_overrides[0].split("=", 1)[1]),
        spec=spec,
        metric=metric,
        direction=direction,
        n_trials=n_trials,
        params=params,
        space=space,
        base=[*base, *trial_overrides(fixed, root / "conf")],
        storage=str(spec.get("storage") or f"sqlite:///{root / 'multirun' / 'optuna.db'}"),
    )
    for pick in (0, -1):
        search.trial_config(extremes(space, pick))
    composed = search.trial_config({})
    if composed.train.init:  # the model file the validate stage checks (its network), before any trial
        check_init(composed.model, str(composed.train.init))
    return search


def open_study(search: Search, on_stale_trial: Callable):
    """(the study in Optuna's storage, whether this process created it): created, or resumed with the
    same settings; several processes that open it at once agree on which one created it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats: a trial whose process died (killed sweep, lost machine) is marked FAILED by the next
    # process that looks (at its next trial, and when it ends), ``on_stale_trial`` ends its MLflow run;
    # the finished-trial count then asks for another trial in its place. Heartbeats are "experimental"
    # in Optuna (there since 2.8): chosen, so their notice is not shown.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # One process at a time makes the storage's tables (in a new database two would collide) and the study.
    with study_lock(search.storage, search.name):
        storage = optuna.storages.RDBStorage(
            search.storage,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=3 * HEARTBEAT_SECONDS,
            heartbeat_stale_trial_callback=on_stale_trial,
        )
        study, created = _create_or_load(search, storage)
    if study.user_attrs.get("settings", search.settings) != search.settings:
        raise ConfigError(
            f"config key 'hparams_search.name' = {search.name!r}: the study {search.name!r} in {shown(search.storage)} "
            f"was made with another search space, overrides or metric; give another name "
            f"(hparams_search.name=...) or delete it: optuna delete-study --study-name {search.name} "
            f"--storage {search.storage}"
        )
    study.set_user_attr("settings", search.settings)
    return study, created


def _create_or_load(search: Search, storage) -> tuple[object, bool]:
    """(the study, whether this call created it), with its sampler and pruner."""
    import optuna

    spec = search.spec
    startup = int(spec.get("startup_trials", 10))
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=int(spec.get("prune_warmup_epochs", 2)))
        if spec.get("prune", True)
        else optuna.pruners.NopPruner()
    )
    seed = spec.get("seed")
    made = {"storage": storage, "study_name": search.name, "direction": search.direction, "pruner": pruner}
    sampler = TrialSeededSampler(None if seed is None else int(seed), startup)
    try:
        return optuna.create_study(**made, sampler=sampler), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(storage=storage, study_name=search.name, sampler=sampler, pruner=pruner), False
