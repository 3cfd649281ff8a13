"""The MLflow store of a project: where it is, its experiment, runs, logging, the registry, model URIs.

[`Tracker`][] is the one object that talks to MLflow (with ``mlflow.pytorch`` for the servable
model). It is made from a config ([`Tracker.for_config`][]) or from the environment
([`Tracker.for_environment`][]); its store is found one way ([`store_uri`][]), and none of its
methods sets MLflow's process-wide tracking URI or experiment.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import yaml
from mlflow.entities import DatasetInput, InputTag, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient
from mlflow.types import Schema, TensorSpec
from omegaconf import DictConfig, OmegaConf

from facedet.tracking.backend import (
    check_store,
    moved,
    project_or_none,
    relocate_artifacts,
    shown,
    sqlite_path,
    store_uri,
    with_busy_timeout,
)
from facedet.tracking.naming import MAX_PARAM_LENGTH, config_params, data_pointer, describe_run, run_tags
from facedet.tracking.owners import OWNER_TAG, end_dead_runs, interrupted, owner

log = logging.getLogger(__name__)

# The experiment tag that makes MLflow 3's UI open an experiment on its training runs (not on the
# GenAI overview of traces): the values of the UI's ExperimentKind.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
DEFAULT_EXPERIMENT = "facedet"
UI_ADDRESS = "http://127.0.0.1:5000"  # `make ui`, for the project's own store
# MLflow 3.17's UI takes its GenAI / model-training switch from the address (else from the browser's
# memory, GenAI by default), not from the experiment's kind tag: links ask for the training view.
UI_TRAINING_VIEW = "workflowType=machine_learning"
MODEL_NAME = "facedet"
CHAMPION = "champion"
WEIGHTS_ARTIFACT = "weights/model.safetensors"


def result_metric(key: str) -> str:
    """The MLflow name of a single-value result: ``best/val_ap50`` -> ``best.val_ap50``, ``test/ap50`` ->
    ``test.ap50`` (the DVC metrics files keep the ``/`` names). MLflow 3's run and compare charts group
    metrics by the part of the name before the last "/", show those groups in alphabetical order, then
    the names without "/" ("Model metrics"): named with dots, the single-value bars come after the
    per-epoch train/ and val/ curves instead of before them (best/, export/, robustness/, test/)."""
    return key.replace("/", ".")


PRIMARY_METRIC = result_metric("best/val_ap50")


@dataclass(frozen=True)
class Tracker:
    """One MLflow store and experiment; ``root``: the project runs are described against (git,
    data.dvc, conf/), None outside a project. Made by [`for_config`][] or [`for_environment`][],
    the store has answered ([`facedet.tracking.backend.check_store`][])."""

    uri: str
    experiment: str = DEFAULT_EXPERIMENT
    root: Path | None = None

    @classmethod
    def for_config(cls, cfg: DictConfig, root: Path | None = None) -> Tracker:
        """The store and experiment of ``cfg.tracking`` in the project at or above ``root`` (default: cwd)."""
        root = project_or_none(root)
        configured = cfg.tracking.get("uri") if "tracking" in cfg else None
        experiment = cfg.tracking.get("experiment") if "tracking" in cfg else None
        return cls(store_uri(configured, root), str(experiment or DEFAULT_EXPERIMENT), root).checked()

    @classmethod
    def for_environment(cls, root: Path | None = None) -> Tracker | None:
        """The project's store (or $MLFLOW_TRACKING_URI's) without a config; None when there is neither."""
        found = project_or_none(root)
        if found is None and not os.environ.get("MLFLOW_TRACKING_URI"):
            return None
        return cls(store_uri(None, found), DEFAULT_EXPERIMENT, found).checked()

    def checked(self) -> Tracker:
        """This tracker once its store has answered; else a one-line error naming it, within seconds."""
        check_store(self.uri)
        return self

    @property
    def client(self) -> MlflowClient:
        """MLflow's client of the store (a busy SQLite store waited for, within a bound)."""
        return MlflowClient(with_busy_timeout(self.uri))

    # ------------------------------------------------------------------------------------------
    # Experiment and runs

    def ensure_experiment(self) -> str:
        """The experiment's id, created if new, tagged so that the UI opens it on its training runs."""
        client = self.client
        experiment = client.get_experiment_by_name(self.experiment)
        location, database = None, sqlite_path(self.uri)
        if database is not None:
            location = (database.parent / "mlartifacts").as_uri()
            if experiment is not None and moved(experiment.artifact_location, location):
                relocate_artifacts(database, experiment.artifact_location, location)
        if experiment is None:
            try:
                return client.create_experiment(
                    self.experiment, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
                )
            except MlflowException as err:  # another process (a team's worker) made it meanwhile
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment = client.get_experiment_by_name(self.experiment)
        if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # a store made before this tag
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return experiment.experiment_id

    def project_tags(self) -> dict[str, str]:
        """Git, data and DVC experiment tags of the project (none outside a project)."""
        return run_tags(self.root) if self.root else {}

    def start_run(self, cfg: DictConfig, prefix: str | None = None, tags: dict[str, str] | None = None) -> str:
        """A new run for a stage's config: named by [`facedet.tracking.naming.describe_run`][] (``prefix`` first, the
        sweep tags in ``tags`` read too), tagged (project tags, ``tags``, this process as its owner), with the
        flattened config, config.yaml and the DVC-tracked dataset; returns its id. Runs that dead
        processes of this host left RUNNING are marked KILLED first."""
        end_dead_runs(self.client, self.ensure_experiment())
        tags = {str(k): str(v) for k, v in (tags or {}).items()} | {OWNER_TAG: owner()}
        name, description = describe_run(cfg, self.root, prefix, tags) if self.root else (prefix, "")
        run_id = self.create_run(name, {"mlflow.note.content": description, **tags}, config_params(cfg))
        config_text = yaml.safe_dump(OmegaConf.to_container(cfg, resolve=True), sort_keys=False)
        self.client.log_text(run_id, config_text, "config.yaml")
        dataset = self._dataset_input()
        if dataset is not None:
            self.client.log_inputs(run_id, datasets=[dataset])
        return run_id

    def create_run(self, name: str | None, tags: dict[str, str], params: dict[str, str] | None = None) -> str:
        """A new run in the experiment with the project tags, ``tags`` and ``params``; returns its id."""
        run = self.client.create_run(self.ensure_experiment(), run_name=name, tags={**self.project_tags(), **tags})
        self.log_params(run.info.run_id, params or {})
        return run.info.run_id

    def _dataset_input(self) -> DatasetInput | None:
        """The DVC-tracked data/ as an MLflow dataset: name ``data``, digest = the md5 in data.dvc,
        source = the folder (None without data.dvc)."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        out = data_pointer(self.root) if self.root else None
        if out is None:
            return None
        folder = str(out.get("path", "data"))
        with warnings.catch_warnings():  # file:// matches two equal local sources; MLflow warns and takes one
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source((self.root / folder).as_uri())
        dataset = MetaDataset(source, name=folder, digest=str(out.get("md5", "unknown"))[:36])
        return DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", "train")])

    @contextmanager
    def continue_run(self, run_id: str) -> Iterator[str]:
        """The block logs into an existing run: RUNNING inside, FINISHED after, FAILED (KILLED on
        Ctrl-C) when the block raises."""
        self.claim_run(run_id)
        with self.failed_on_error(run_id):
            yield run_id
        self.end_run(run_id, "FINISHED")

    def claim_run(self, run_id: str) -> None:
        """This process works on the run now (a later stage, a resumed training): RUNNING, owned by it."""
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, OWNER_TAG, owner())

    @contextmanager
    def failed_on_error(self, run_id: str) -> Iterator[None]:
        """Mark the run FAILED (KILLED on Ctrl-C, also when Lightning turned it into an exit) when the
        block raises, and re-raise. A store that does not answer then is not waited for: the run's
        owner tag lets the next start on this host mark it KILLED."""
        try:
            yield
        except BaseException as err:
            status = "KILLED" if interrupted(err) else "FAILED"
            try:
                with _environ(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"):
                    self.end_run(run_id, status)
            except Exception as failed:  # noqa: BLE001 - never hide the block's own error
                log.warning("could not mark MLflow run %s %s: %s", run_id, status, str(failed).splitlines()[0][:200])
            raise

    def end_run(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    def find_runs(self, tags: dict[str, str]) -> list[tuple[str, str]]:
        """(run id, status) of the experiment's runs that carry all of ``tags``."""
        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is None:
            return []
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        return [(r.info.run_id, r.info.status) for r in self.client.search_runs([experiment.experiment_id], query)]

    # ------------------------------------------------------------------------------------------
    # Logging

    def log_metrics(self, run_id: str, metrics: dict[str, float | None], step: int = 0) -> None:
        """Single values (None ones left out) at ``step``."""
        now = time.time_ns() // 1_000_000
        rows = [Metric(key, float(value), now, step) for key, value in metrics.items() if value is not None]
        for start in range(0, len(rows), 1000):
            self.client.log_batch(run_id, metrics=rows[start : start + 1000])

    def log_params(self, run_id: str, params: dict[str, object]) -> None:
        rows = [Param(str(k), str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(rows), 100):
            self.client.log_batch(run_id, params=rows[start : start + 100])

    def params(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.params)

    def has_run(self, run_id: str) -> bool:
        """Whether the store holds the run (False when it answers that it does not; any other failure,
        a store that does not answer, raises)."""
        try:
            self.client.get_run(run_id)
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise
        return True

    def metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def set_tags(self, run_id: str, tags: dict[str, object]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value))

    def log_artifact(self, run_id: str, path: Path, folder: str | None = None) -> None:
        """A file (or every file of a folder) into the run's artifacts under ``folder``."""
        if Path(path).is_dir():
            self.client.log_artifacts(run_id, str(path), folder)
        else:
            self.client.log_artifact(run_id, str(path), folder)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def log_servable(self, run_id: str, model, example: np.ndarray, output: np.ndarray, any_size: bool) -> ModelInfo:
        """``model`` as the run's servable model ``model`` (mlflow.pytorch, pt2: torch.export) with its
        input example and signature: float32 [-1, 3, H, W] -> float32 [-1, N, 5 or 15 (with landmarks)], H, W and N any
        (``any_size``) or those of ``example``/``output``."""
        size = (-1, -1) if any_size else example.shape[2:]
        faces = (-1, output.shape[-1]) if any_size else output.shape[1:]
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 3, *size))]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *faces))]),
        )
        # mlflow.pytorch.log_model logs into the active run of MLflow's fluent API only: the run is made
        # active against this store for the call, and the process-wide settings are put back after.
        # Seeing uv.lock, MLflow would export the requirements with `uv export` (the whole project, dev
        # tools included, and a warning where uv is not on PATH); it infers them from the model instead.
        with (
            _fluent_store(with_busy_timeout(self.uri)),
            mlflow.start_run(run_id=run_id),
            _environ(MLFLOW_UV_AUTO_DETECT="false"),
        ):
            return mlflow.pytorch.log_model(model, name="model", input_example=example, signature=signature)

    # ------------------------------------------------------------------------------------------
    # Registry, model URIs, the UI

    def register(self, run_id: str) -> dict[str, object]:
        """Register the run's logged model as a new version of ``facedet`` (description: the run's name
        and settings; tags: val AP, data hash, git commit, run name) and move the ``champion`` alias to it
        when its validation AP@0.5 beats the current champion's. A sweep trial is registered only when it
        beats the champion (its other trials stay runs, not registry versions): then ``version`` is None."""
        client = self.client
        run = client.get_run(run_id)
        score = run.data.metrics[PRIMARY_METRIC]
        try:
            champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
            logged = client.get_run(champion.run_id).data.metrics
            best = logged.get(PRIMARY_METRIC, logged.get("best/val_ap50", float("-inf")))  # or a champion of before
        except MlflowException:
            champion, best = None, float("-inf")
        promoted = score > best
        if "sweep.trial" in run.data.tags and not promoted:
            return {"version": None, "champion": False, "champion_version": int(champion.version) if champion else None}
        models = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'")
        source = f"models:/{models[0].model_id}" if models else f"runs:/{run_id}/model"
        tags = {
            PRIMARY_METRIC: f"{score:.4f}",
            "data.md5": run.data.tags.get("data.md5", "unknown"),
            "git.commit": run.data.tags.get("git.commit", "unknown"),
            "run_name": run.info.run_name,
        }
        with _fluent_store(with_busy_timeout(self.uri)):  # register_model links the logged model; it has no client form
            version = mlflow.register_model(source, MODEL_NAME, tags=tags).version
        # The run's note without its markdown marks: the registry's versions table shows descriptions raw.
        note = run.data.tags.get("mlflow.note.content", "")
        client.update_model_version(MODEL_NAME, version, description=note.replace("**", "").replace("`", ""))
        if promoted:
            client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
        return {
            "version": int(version),
            "champion": promoted,
            "champion_version": int(version) if promoted else int(champion.version),
        }

    def resolve_model_uri(self, uri: str) -> Path:
        """The local safetensors file behind ``models:/facedet@champion``, ``models:/facedet/3`` or
        ``runs:/<run id>/...`` in this store (downloaded to a cache if remote)."""
        client = self.client
        try:
            if uri.startswith("models:/"):
                name, _, ref = uri.removeprefix("models:/").partition("@")
                if ref:
                    run_id = client.get_model_version_by_alias(name, ref).run_id
                else:
                    name, _, number = name.partition("/")
                    run_id = client.get_model_version(name, number).run_id
            elif uri.startswith("runs:/"):
                run_id = uri.removeprefix("runs:/").split("/")[0]
            else:
                raise ValueError(f"{uri}: expected models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID")
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=WEIGHTS_ARTIFACT, tracking_uri=with_busy_timeout(self.uri)
            )
        except MlflowException as err:
            raise ValueError(f"{uri}: not found in the MLflow store {shown(self.uri)} ({err.message})") from None
        return Path(path)

    def run_link(self, run_id: str) -> str:
        """The run's page in the MLflow UI: the tracking server's own, `make ui`'s for a SQLite store, or
        the run's id and store where no UI is known (a database server)."""
        if not self.uri.startswith(("http://", "https://", "sqlite:///")):
            return f"{run_id} in {shown(self.uri)}"
        experiment_id = self.client.get_run(run_id).info.experiment_id
        address = shown(self.uri).rstrip("/") if self.uri.startswith("http") else UI_ADDRESS
        return f"{address}/#/experiments/{experiment_id}/runs/{run_id}?{UI_TRAINING_VIEW}"


def resolve_model_uri(uri: str, tracker: Tracker | None = None) -> Path:
    """[`Tracker.resolve_model_uri`][] in ``tracker``'s store, default: the project's (or
    $MLFLOW_TRACKING_URI's, or the original project's in a queued ``dvc exp run``)."""
    return (tracker or Tracker(store_uri()).checked()).resolve_model_uri(uri)


@contextmanager
def _fluent_store(uri: str) -> Iterator[None]:
    """MLflow's fluent API against ``uri`` inside the block; its process-wide tracking URI (and the
    $MLFLOW_TRACKING_URI that ``mlflow.set_tracking_uri`` exports) as they were after it. MLflow's own
    ``_use_tracking_uri`` (pinned MLflow) restores the URI but unsets the variable."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Environment variables set inside the block, as they were after it."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
