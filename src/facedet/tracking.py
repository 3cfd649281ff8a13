"""MLflow bookkeeping shared by the stages: one store, one run per pipeline run, tags and params."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from facedet.config import ConfigError, compose_config, derived_keys, project_root, tracking_uri

log = logging.getLogger(__name__)

# MLflow rejects longer parameter values.
MAX_PARAM_LENGTH = 6000
# The experiment tag that makes MLflow 3's UI open an experiment on its training runs (not on the
# GenAI overview of traces): the values of the UI's ExperimentKind.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
# Config sections a run name leaves out: where files go and where runs are recorded.
UNNAMED_SECTIONS = ("paths", "tracking", "hparams_search")
# Extra tags (a JSON object) for every run created while it is set, e.g. {"mlflow.parentRunId": ...}
# for the trials of a sweep; see extra_tags().
RUN_TAGS_ENV = "FACEDET_RUN_TAGS"


def flatten(cfg: DictConfig) -> dict[str, str]:
    """The composed config as flat ``a.b.c`` params; list values kept whole, long values cut with '...'."""
    flat: dict[str, str] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            text = str(node)
            flat[prefix] = text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=project_root()
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def run_tags() -> dict[str, str]:
    """Git commit and dirty flag, the data hash pinned by data.dvc, the DVC experiment (in a
    ``dvc exp run``) and the tags of $FACEDET_RUN_TAGS."""
    tags = {
        "git.commit": _git("rev-parse", "HEAD") or "unknown",
        "git.dirty": str(bool(_git("status", "--porcelain", "--untracked-files=no"))),
    }
    data_dvc = project_root() / "data.dvc"
    if data_dvc.is_file():
        outs = (yaml.safe_load(data_dvc.read_text()) or {}).get("outs") or [{}]
        tags["data.md5"] = str(outs[0].get("md5", "unknown"))
    if os.environ.get("DVC_EXP_NAME"):  # set by `dvc exp run` (workspace, --temp and queued alike)
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("DVC_EXP_BASELINE_REV"):
        tags["dvc.baseline_rev"] = os.environ["DVC_EXP_BASELINE_REV"]
    tags.update({str(k): str(v) for k, v in json.loads(os.environ.get(RUN_TAGS_ENV) or "{}").items()})
    return tags


@contextmanager
def extra_tags(tags: dict[str, str]) -> Iterator[None]:
    """Runs created inside (by any stage, in this process or its children) also get these tags."""
    before = os.environ.get(RUN_TAGS_ENV)
    merged = {**json.loads(before or "{}"), **{str(k): str(v) for k, v in tags.items()}}
    os.environ[RUN_TAGS_ENV] = json.dumps(merged)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_TAGS_ENV, None)
        else:
            os.environ[RUN_TAGS_ENV] = before


def experiment_id(cfg: DictConfig) -> str:
    """Point MLflow at the configured store and return the configured experiment (created if new),
    tagged so that the UI opens it on its training runs."""
    uri = tracking_uri(cfg)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
        if (
            experiment is not None
            and experiment.artifact_location.startswith("file://")
            and experiment.artifact_location.endswith("/mlartifacts")
            and experiment.artifact_location != location
        ):
            relocate_store(Path(uri.removeprefix("sqlite:///")), experiment.artifact_location, location)
    if experiment is None:
        return client.create_experiment(
            cfg.tracking.experiment, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # a store made before this tag
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return experiment.experiment_id


ARTIFACT_COLUMNS = {
    "experiments": "artifact_location",
    "runs": "artifact_uri",
    "logged_models": "artifact_location",
    "model_versions": "storage_location",
}


def relocate_store(database: Path, old: str, new: str) -> None:
    """The project (mlflow.db + mlartifacts/) was moved or copied: point its SQLite store's recorded
    artifact locations (experiments, runs, logged models, model versions) from the old mlartifacts/ to
    the one beside the database, so that the moved project logs where it is. MLflow stores absolute
    locations and has no API to change them."""
    import sqlite3

    log.info("the MLflow store %s moved: its artifact locations %s -> %s", database, old, new)
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
        for table, column in ARTIFACT_COLUMNS.items():
            if table in tables:
                connection.execute(
                    f"update {table} set {column} = ? || substr({column}, ?) "  # noqa: S608
                    f"where {column} = ? or {column} like ?",
                    (new, len(old) + 1, old, old + "/%"),
                )


def reference_settings() -> tuple[dict[str, str], str]:
    """(flat settings, what they are) that a run is told apart from: in a DVC experiment the params.yaml
    of its baseline commit, else the committed params.yaml (what `dvc repro` runs), else conf/'s defaults."""
    rev = os.environ.get("DVC_EXP_BASELINE_REV") or "HEAD"
    committed = _git("show", f"{rev}:params.yaml")
    if committed:
        short = _git("rev-parse", "--short", rev)
        return flatten(OmegaConf.create(yaml.safe_load(committed))), f"params.yaml of {short}"
    try:
        return flatten(compose_config([])), "the defaults of conf/"
    except Exception:  # no conf/ here (a params file used elsewhere): nothing to compare with
        return {}, "nothing"


def changed_settings(cfg: DictConfig) -> tuple[dict[str, str], str]:
    """(the settings of `cfg` that differ from :func:`reference_settings`, what they are compared with);
    paths, tracking and the search config left out."""
    reference, what = reference_settings()
    try:
        derived = derived_keys(project_root() / "conf")
    except ConfigError:  # no conf/ here
        derived = set()
    return {
        key: value
        for key, value in flatten(cfg).items()
        if key.split(".")[0] not in UNNAMED_SECTIONS and key not in derived and reference.get(key) != value
    }, what


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() else f"{number:.3g}"


def describe_run(cfg: DictConfig, prefix: str | None = None, limit: int = 90) -> tuple[str, str]:
    """(run name, description): the DVC experiment or sweep trial, then what differs: a sweep trial's
    searched values, else the settings that differ from the baseline (``as committed`` or ``defaults``
    when none), e.g.
    ``dense lr-high: train.lr=0.005`` or ``dense sample_optuna trial 3: lr=0.0013 neck_width=64``."""
    tags = run_tags()
    who = ([tags["dvc.experiment"]] if "dvc.experiment" in tags else []) + (
        [f"{tags['sweep.name']} trial {tags['sweep.trial']}"] if "sweep.trial" in tags else []
    )
    changes, reference = changed_settings(cfg)
    if "sweep.values" in tags:  # what the sweep chose for this trial, not what its base overrides set
        shown = json.loads(tags["sweep.values"])
    else:
        shown = changes
    text = " ".join(
        f"{key.split('.')[-1] if key.count('.') > 1 else key}={_short(str(value))}" for key, value in shown.items()
    )
    what = text if len(text) <= limit else text[: limit - 1] + "\u2026"
    same = "defaults" if reference.startswith("the defaults") else "as committed"
    name = " ".join(p for p in (prefix, ": ".join([*who, what or same])) if p)
    description = "\n".join(
        [
            f"**{name}**",
            "",
            f"Settings that differ from {reference}:",
            "",
            *(f"- `{k}` = `{v}`" for k, v in changes.items()),
        ]
        if changes
        else [f"**{name}**", "", f"The settings of {reference}."]
    )
    return name, description


def dataset_input(context: str = "train") -> mlflow.entities.DatasetInput | None:
    """The DVC-tracked data/ as an MLflow dataset: name ``data``, digest = the md5 in data.dvc, source = the
    folder (None without data.dvc)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    data_dvc = project_root() / "data.dvc"
    if not data_dvc.is_file():
        return None
    out = ((yaml.safe_load(data_dvc.read_text()) or {}).get("outs") or [{}])[0]
    with warnings.catch_warnings():  # file:// matches two equal local sources; MLflow warns and takes one
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source((project_root() / str(out.get("path", "data"))).as_uri())
    dataset = MetaDataset(source, name=str(out.get("path", "data")), digest=str(out.get("md5", "unknown"))[:36])
    return DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])


def start_run(cfg: DictConfig, run_name: str | None = None, tags: dict[str, str] | None = None) -> str:
    """Create a run in the configured experiment, named by :func:`describe_run` (``run_name``, if
    given, goes first), with tags (run_tags() and `tags`), the flattened config and the dataset;
    returns its id."""
    exp_id = experiment_id(cfg)
    client = MlflowClient(tracking_uri(cfg))
    name, description = describe_run(cfg, run_name)
    run = client.create_run(
        exp_id, run_name=name, tags={**run_tags(), "mlflow.note.content": description, **(tags or {})}
    )
    params = flatten(cfg)
    items = list(params.items())
    for start in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=[mlflow.entities.Param(k, v) for k, v in items[start : start + 100]])
    client.log_text(
        run.info.run_id, yaml.safe_dump(OmegaConf.to_container(cfg, resolve=True), sort_keys=False), "config.yaml"
    )
    dataset = dataset_input()
    if dataset is not None:
        client.log_inputs(run.info.run_id, datasets=[dataset])
    return run.info.run_id


@contextmanager
def failed_run_on_error(cfg: DictConfig, run_id: str) -> Iterator[None]:
    """Mark the run FAILED (KILLED on Ctrl-C) when the block raises, and re-raise."""
    try:
        yield
    except BaseException as err:
        MlflowClient(tracking_uri(cfg)).set_terminated(
            run_id, "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED"
        )
        raise


UI_ADDRESS = "http://127.0.0.1:5000"  # `make ui`
# MLflow 3.17's UI takes its GenAI / model-training switch from the address (else from the browser's
# memory, GenAI by default), not from the experiment's kind tag: links ask for the training view.
UI_TRAINING_VIEW = "workflowType=machine_learning"


def run_link(cfg: DictConfig, run_id: str) -> str:
    """The run's page in the MLflow UI that `make ui` serves."""
    return f"{UI_ADDRESS}/#/experiments/{experiment_id(cfg)}/runs/{run_id}?{UI_TRAINING_VIEW}"


MODEL_NAME = "facedet"
CHAMPION = "champion"


def result_metric(key: str) -> str:
    """The MLflow name of a single-value result: ``best/val_ap50`` -> ``best.val_ap50``, ``test/ap50`` ->
    ``test.ap50`` (the DVC metrics files keep the ``/`` names). MLflow 3's run and compare charts group
    metrics by the part of the name before the last "/", show those groups in alphabetical order, then
    the names without "/" ("Model metrics"): named with dots, the ~29 single-value bars come after the
    per-epoch train/ and val/ curves instead of before them (best/, export/, robustness/, test/)."""
    return key.replace("/", ".")


PRIMARY_METRIC = result_metric("best/val_ap50")


def register(cfg: DictConfig, run_id: str) -> dict[str, object]:
    """Register the run's logged model as a new version of ``facedet`` (description: the run's name
    and settings; tags: val AP, data hash, git commit, run name) and move the ``champion`` alias to it
    when its validation AP@0.5 beats the current champion's. A sweep trial is registered only when it
    beats the champion (its other trials stay runs, not registry versions): then ``version`` is None."""
    client = MlflowClient(tracking_uri(cfg))
    run = client.get_run(run_id)
    score = run.data.metrics[PRIMARY_METRIC]
    try:
        champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
        logged = client.get_run(champion.run_id).data.metrics
        best = logged.get(PRIMARY_METRIC, logged.get("best/val_ap50", float("-inf")))  # or a champion of before
    except mlflow.exceptions.MlflowException:
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
    version = mlflow.register_model(source, MODEL_NAME, tags=tags).version
    client.update_model_version(MODEL_NAME, version, description=run.data.tags.get("mlflow.note.content", ""))
    if promoted:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
    return {
        "version": int(version),
        "champion": promoted,
        "champion_version": int(version) if promoted else int(champion.version),
    }


def resolve_model_uri(uri: str) -> Path:
    """The local safetensors file behind ``models:/facedet@champion``, ``models:/facedet/3`` or
    ``runs:/<run id>/...`` in the configured MLflow store (downloaded to a cache if remote)."""
    store = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"
    client = MlflowClient(store)
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
            run_id=run_id, artifact_path="weights/model.safetensors", tracking_uri=store
        )
    except mlflow.exceptions.MlflowException as err:
        raise ValueError(f"{uri}: not found in the MLflow store {store} ({err.message})") from None
    return Path(path)
