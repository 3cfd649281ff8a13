"""Experiment tracking: the one place that talks to MLflow.

The stages use a [`Tracker`][] (``Tracker.for_config(cfg)``): ``start_run`` opens a stage's run,
``continue_run`` logs into it later (``log_metrics``, ``log_artifact``), ``register`` files its model in
the registry, ``resolve_model_uri`` turns ``models:/facedet@champion`` into a file, ``run_link`` is the
run's page in the UI. Inside training a Lightning logger ([`facedet.tracking.lightning.RunLogger`][])
logs the epochs into the run.

- [`facedet.tracking.store`][]: the experiment, runs, logging, registry, model URIs.
- [`facedet.tracking.backend`][]: where the store is (found one way: ``tracking.uri``, else
  $MLFLOW_TRACKING_URI, else the project's ``mlflow.db``, the original project's in a queued
  ``dvc exp run``) and whether it answers (one line within seconds when it does not; a busy SQLite
  store waited for).
- [`facedet.tracking.owners`][]: runs left RUNNING by a process that died are marked KILLED.
- [`facedet.tracking.naming`][]: run names, tags and descriptions from git, DVC and conf/.
- [`facedet.tracking.lightning`][]: the Lightning logger that writes a training's metrics into its run.
"""

from facedet.tracking.backend import StoreUnavailable, store_uri
from facedet.tracking.naming import describe_run, flatten, run_tags
from facedet.tracking.store import CHAMPION, MODEL_NAME, PRIMARY_METRIC, Tracker, resolve_model_uri, result_metric

__all__ = [
    "CHAMPION",
    "MODEL_NAME",
    "PRIMARY_METRIC",
    "StoreUnavailable",
    "Tracker",
    "describe_run",
    "flatten",
    "resolve_model_uri",
    "result_metric",
    "run_tags",
    "store_uri",
]
