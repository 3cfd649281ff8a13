"""MLflow bookkeeping shared by the stages: one store, one run per pipeline run, tags and params."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from facedet.config import project_root, tracking_uri

# MLflow rejects longer parameter values.
MAX_PARAM_LENGTH = 6000


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
    """Git commit and dirty flag, and the data hash pinned by data.dvc."""
    tags = {"git.commit": _git("rev-parse", "HEAD") or "unknown",
            "git.dirty": str(bool(_git("status", "--porcelain", "--untracked-files=no")))}
    data_dvc = project_root() / "data.dvc"
    if data_dvc.is_file():
        outs = (yaml.safe_load(data_dvc.read_text()) or {}).get("outs") or [{}]
        tags["data.md5"] = str(outs[0].get("md5", "unknown"))
    return tags


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


def start_run(cfg: DictConfig, run_name: str | None = None) -> str:
    """Create a run in the configured experiment with tags and the flattened config; returns its id."""
    exp_id = experiment_id(cfg)
    client = MlflowClient(tracking_uri(cfg))
    run = client.create_run(exp_id, run_name=run_name, tags=run_tags())
    params = flatten(cfg)
    items = list(params.items())
    for start in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=[mlflow.entities.Param(k, v) for k, v in items[start:start + 100]])
    client.log_text(run.info.run_id, yaml.safe_dump(OmegaConf.to_container(cfg, resolve=True), sort_keys=False),
                    "config.yaml")
    return run.info.run_id
