"""The sweep's MLflow bookkeeping: its parent run, the tags of a trial's run, ending a failed trial's run."""

from __future__ import annotations

import json
import logging
import time

import yaml
from omegaconf import OmegaConf

from facedet.apps.sweep.study import Search
from facedet.tracking import Tracker, result_metric

log = logging.getLogger(__name__)

PARENT_ATTR = "mlflow_parent_run_id"  # the study's user attribute that names the parent run
PARENT_WAIT_SECONDS = 120  # how long a process that joins a new study waits for its creator's parent run


def parent_run(tracker: Tracker, search: Search, study, created: bool) -> str:
    """The sweep's parent run: made by the process that created the study, reopened when the study is
    resumed or by the other processes of the sweep (which wait for it to be made)."""
    parent_id = None if created else _made_parent(study)
    if parent_id is not None:
        tracker.client.update_run(parent_id, status="RUNNING")
        return parent_id
    space = {k: str(v) for k, v in search.params.items()}
    tags = {
        "sweep.name": search.name,
        "sweep.role": "parent",
        "sweep.storage": search.storage,
        "sweep.search_space": json.dumps(space),
        "sweep.metric": search.metric,
        "sweep.direction": search.direction,
        "sweep.overrides": " ".join(search.base),
    }
    params = {
        "sweep.n_trials": search.n_trials,
        "sweep.metric": search.metric,
        **{f"space.{k}": v for k, v in space.items()},
    }
    parent_id = tracker.create_run(f"sweep {search.name}", tags, params)
    study.set_user_attr(PARENT_ATTR, parent_id)
    recipe = {"hparams_search": OmegaConf.to_container(search.spec, resolve=True), "overrides": search.base}
    tracker.log_text(parent_id, yaml.safe_dump(recipe, sort_keys=False), "sweep.yaml")
    return parent_id


def _made_parent(study, seconds: float = PARENT_WAIT_SECONDS) -> str | None:
    """The parent run of a study another process created: there, or made within ``seconds`` (None: its
    maker died before making it)."""
    deadline = time.monotonic() + seconds
    while (parent_id := study.user_attrs.get(PARENT_ATTR)) is None and time.monotonic() < deadline:
        time.sleep(1)
    if parent_id is None:
        log.warning(
            "sweep %s: the process that created the study made no MLflow parent run: making it", study.study_name
        )
    return parent_id


def trial_tags(search: Search, parent_id: str, trial: int, values: dict[str, object]) -> dict[str, str]:
    """The tags of a trial's run (the train stage's): its parent, the sweep, the trial and its values."""
    return {
        "mlflow.parentRunId": parent_id,
        "sweep.name": search.name,
        "sweep.trial": str(trial),
        "sweep.values": json.dumps(values),
    }


def end_trial_run(tracker: Tracker, parent_id: str, trial: int, status: str) -> None:
    """End the failed or interrupted trial's MLflow run (if the train stage got to create it)."""
    try:
        for run_id, now in tracker.find_runs({"mlflow.parentRunId": parent_id, "sweep.trial": str(trial)}):
            if now == "RUNNING":
                tracker.end_run(run_id, status)
    except Exception as err:  # bookkeeping only: never hide the trial's own error
        log.warning("could not mark trial %d's MLflow run as failed: %s", trial, err)


def record_best(tracker: Tracker, parent_id: str, search: Search, best, finished: list, completed: int) -> None:
    """The best trial's value, params and run on the parent run."""
    tracker.log_metrics(parent_id, {result_metric(search.metric): best.value})
    logged = tracker.params(parent_id)
    tracker.log_params(parent_id, {f"best.{k}": v for k, v in best.params.items() if f"best.{k}" not in logged})
    tracker.set_tags(
        parent_id,
        {
            "sweep.best_value": best.value,
            "sweep.best_trial": best.number,
            "sweep.best_run_id": best.user_attrs.get("run_id"),
            "sweep.best_params": json.dumps(best.params),
            "sweep.completed": completed,
            "sweep.pruned": len(finished) - completed,
        },
    )
