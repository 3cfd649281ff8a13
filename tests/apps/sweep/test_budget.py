"""Several workers on one study (real Optuna, real SQLite storage): exactly n_trials finished, none
drawn twice, one creator."""

import threading
import time

import optuna

from facedet.apps.sweep import budget
from facedet.apps.sweep.budget import TrialSeededSampler, run_trials


def _worker(storage: str, n_trials: int, report: list) -> None:
    """One sweep process's part (as in facedet.apps.sweep.study.open_study and run.sweep)."""
    sampler = TrialSeededSampler(seed=0, startup_trials=10)
    try:
        study, created = optuna.create_study(storage=storage, study_name="s", sampler=sampler), True
    except optuna.exceptions.DuplicatedStudyError:
        study, created = optuna.load_study(storage=storage, study_name="s", sampler=sampler), False

    def objective(trial):
        time.sleep(1.0)
        return trial.suggest_float("x", 0, 1)

    report.append({"created": created, "ran": run_trials(study, storage, n_trials, objective, n_trials)})


def test_two_workers_on_one_study_finish_exactly_n_trials_with_different_parameters(tmp_path, monkeypatch):
    """Two workers started together (threads here, so that it is quick; the slow team test runs
    processes on PostgreSQL): Optuna's own n_trials + MaxTrialsCallback ran 3 trials for 2."""
    monkeypatch.setattr(budget, "POLL_SECONDS", 0.2)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(storage=storage, study_name="warm-up")  # the tables, before two workers race to make them
    reports: list[dict] = []
    workers = [threading.Thread(target=_worker, args=(storage, 3, reports)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert sorted(r["created"] for r in reports) == [False, True]  # one worker made the study
    assert sum(r["ran"] for r in reports) == 3
    trials = optuna.load_study(storage=storage, study_name="s").get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert len({t.params["x"] for t in trials}) == 3


def test_one_process_draws_the_same_trials_again_from_the_same_seed(tmp_path):
    drawn = []
    for attempt in range(2):
        storage = f"sqlite:///{tmp_path / f'{attempt}.db'}"
        study = optuna.create_study(storage=storage, sampler=TrialSeededSampler(seed=7, startup_trials=2))
        run_trials(study, storage, 4, lambda trial: trial.suggest_float("x", 0, 1) ** 2, attempts=4)
        drawn.append([t.params["x"] for t in study.get_trials()])
    assert drawn[0] == drawn[1] and len(set(drawn[0])) == 4


def test_a_failing_setting_ends_after_the_attempts_it_is_given(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(storage=storage)

    def fails(trial):
        raise RuntimeError("broken setting")

    assert run_trials(study, storage, 5, fails, attempts=2) == 2
    assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.FAIL] * 2
