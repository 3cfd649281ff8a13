"""The trial budget of a study shared by several processes: never more than ``n_trials`` finished
trials, none drawn twice.

Optuna's own ``optimize(n_trials=..., callbacks=[MaxTrialsCallback])`` decides per process, after a
trial: two processes that start together run one trial too many. Here a process takes a lock on the
study (a file lock beside a SQLite storage, an advisory lock on PostgreSQL, a named lock on MySQL),
counts the finished (complete, pruned) and live (running, queued) trials, and queues one more only
while they stay below ``n_trials``; it then runs that queued trial (``study.optimize`` pops it). A
process with nothing left to take waits for the others' running trials: they finish, or their
heartbeat stops and the next look marks them failed, which frees their places.

[`TrialSeededSampler`][] draws every trial from its own seed (made of the sweep's seed and the
trial's number, unique across processes): a single process is reproducible, two processes never draw the
same parameters.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import optuna
import sqlalchemy

from facedet.config import ConfigError

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0  # how often a process with no trial left to take looks at the others' again


COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # towards n_trials
LIVE = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)


@contextmanager
def study_lock(storage: str, study_name: str) -> Iterator[None]:
    """The block runs in one process at a time among those working on ``study_name`` in ``storage``."""
    key = int.from_bytes(hashlib.sha256(f"facedet sweep {study_name}".encode()).digest()[:8], "big", signed=True)
    if storage.startswith("sqlite:///"):
        with open(f"{storage.removeprefix('sqlite:///').split('?', 1)[0]}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        return
    kind = storage.split(":", 1)[0].split("+")[0]
    take, give = {
        "postgresql": ("select pg_advisory_lock(:key)", "select pg_advisory_unlock(:key)"),
        "mysql": ("select get_lock(:key, -1)", "select release_lock(:key)"),
    }.get(kind, (None, None))
    if take is None:
        raise ConfigError(
            f"config key 'hparams_search.storage' = {storage!r}: expected a sqlite:///, postgresql:// or "
            "mysql:// URL (processes sharing a study lock it to share its trials)"
        )
    engine = sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(take), {"key": key if kind == "postgresql" else str(key)})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text(give), {"key": key if kind == "postgresql" else str(key)})
            connection.commit()


def take_trial(study, storage: str, n_trials: int) -> bool | None:
    """Under the study's lock: True when a trial was queued for this process, False when the budget is
    taken by running trials (wait), None when ``n_trials`` trials have finished."""
    with study_lock(storage, study.study_name):
        optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        finished = sum(t.state in COUNTED for t in trials)
        if finished >= n_trials:
            return None
        if finished + sum(t.state in LIVE for t in trials) >= n_trials:
            return False
        study.enqueue_trial({})
        return True


def run_trials(study, storage: str, n_trials: int, objective: Callable, attempts: int) -> int:
    """Run trials of ``study`` until it holds ``n_trials`` finished ones, whichever process ran them, or
    this process has made ``attempts`` (failed trials count: a setting that always fails ends); the
    number of trials this process ran."""
    ran = 0
    while ran < attempts:
        taken = take_trial(study, storage, n_trials)
        if taken is None:
            break
        if not taken:
            time.sleep(POLL_SECONDS)
            continue
        study.optimize(objective, n_trials=1, catch=(Exception,))
        ran += 1
    return ran


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """Optuna's TPE sampler, seeded per trial from ``seed`` and the trial's number (see the module)."""

    def __init__(self, seed: int | None, startup_trials: int) -> None:
        self.seed, self.startup_trials = seed, startup_trials
        self._by_trial: dict[int, optuna.samplers.TPESampler] = {}

    def _for(self, trial) -> optuna.samplers.TPESampler:
        if trial.number not in self._by_trial:
            # Mixed by SeedSequence: MT19937 streams of nearby seeds (0 and 3) begin almost alike.
            seed = (
                None
                if self.seed is None
                else int(np.random.SeedSequence([self.seed, trial.number]).generate_state(1)[0])
            )
            self._by_trial[trial.number] = optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.startup_trials)
        return self._by_trial[trial.number]

    def infer_relative_search_space(self, study, trial):
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self._for(trial).after_trial(study, trial, state, values)
        self._by_trial.pop(trial.number, None)
