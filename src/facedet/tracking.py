"""MLflow bookkeeping shared by the stages: one store, one run per pipeline run, tags and params."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from facedet.config import project_root, tracking_uri

# MLflow rejects longer parameter values.
MAX_PARAM_LENGTH = 6000
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
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=project_root()).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def run_tags() -> dict[str, str]:
    """Git commit and dirty flag, the data hash pinned by data.dvc, the DVC experiment (in a
    ``dvc exp run``) and the tags of $FACEDET_RUN_TAGS."""
    tags = {"git.commit": _git("rev-parse", "HEAD") or "unknown",
            "git.dirty": str(bool(_git("status", "--porcelain", "--untracked-files=no")))}
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
    """Point MLflow at the configured store and return the configured experiment (created if new)."""
    uri = tracking_uri(cfg)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return client.create_experiment(cfg.tracking.experiment, artifact_location=location)


def start_run(cfg: DictConfig, run_name: str | None = None, tags: dict[str, str] | None = None) -> str:
    """Create a run in the configured experiment with tags (run_tags() and `tags`) and the flattened
    config; returns its id."""
    exp_id = experiment_id(cfg)
    client = MlflowClient(tracking_uri(cfg))
    run = client.create_run(exp_id, run_name=run_name, tags={**run_tags(), **(tags or {})})
    params = flatten(cfg)
    items = list(params.items())
    for start in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=[mlflow.entities.Param(k, v) for k, v in items[start:start + 100]])
    client.log_text(run.info.run_id, yaml.safe_dump(OmegaConf.to_container(cfg, resolve=True), sort_keys=False),
                    "config.yaml")
    return run.info.run_id


MODEL_NAME = "facedet"
CHAMPION = "champion"
PRIMARY_METRIC = "best/val_ap50"


def register(cfg: DictConfig, run_id: str) -> dict[str, object]:
    """Register the run's logged model as a new version of ``facedet``; move the ``champion`` alias
    to it only when its validation AP@0.5 beats the current champion's."""
    client = MlflowClient(tracking_uri(cfg))
    version = mlflow.register_model(f"runs:/{run_id}/model", MODEL_NAME).version
    score = client.get_run(run_id).data.metrics[PRIMARY_METRIC]
    try:
        champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
        best = client.get_run(champion.run_id).data.metrics.get(PRIMARY_METRIC, float("-inf"))
    except mlflow.exceptions.MlflowException:
        champion, best = None, float("-inf")
    promoted = score > best
    if promoted:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
    return {"version": int(version), "champion": promoted,
            "champion_version": int(version) if promoted else int(champion.version)}


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
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="weights/model.safetensors",
                                                   tracking_uri=store)
    except mlflow.exceptions.MlflowException as err:
        raise ValueError(f"{uri}: not found in the MLflow store {store} ({err.message})") from None
    return Path(path)
