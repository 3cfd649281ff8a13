"""Compose the configuration from conf/ (Hydra) or read the params.yaml that DVC wrote from it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) that holds dvc.yaml and conf/."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "conf").is_dir():
            return folder
    raise ConfigError(f"no facedet project (dvc.yaml + conf/) at or above {here}")


def compose_config(overrides: list[str] | None = None, root: Path | None = None) -> DictConfig:
    """The composed conf/config.yaml with Hydra overrides such as ``train.max_epochs=2``."""
    conf_dir = (root or project_root()) / "conf"
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides or []))
    validate(cfg)
    return cfg


def load_params(path: Path) -> DictConfig:
    """The params.yaml DVC composed from conf/ (what `dvc repro` runs with)."""
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such params file (run from the project root)")
    cfg = OmegaConf.load(path)
    validate(cfg)
    return cfg


def _require(cfg: DictConfig, key: str, ok, expectation: str) -> None:
    value = OmegaConf.select(cfg, key, default=None)
    if value is None or not ok(value):
        raise ConfigError(f"config key '{key}' = {value!r}: expected {expectation}")


def validate(cfg: DictConfig) -> None:
    """Reject wrong values early, naming the key, instead of failing deep inside a stage."""
    positive_int = (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a positive integer")
    for key in ("collect.max_side", "model.input_size", "train.max_epochs", "train.batch_size"):
        _require(cfg, key, *positive_int)
    _require(cfg, "augment.copies", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
             "0 (online augmentation) or a positive integer")
    _require(cfg, "collect.jpeg_quality", lambda v: isinstance(v, int) and 1 <= v <= 100, "an integer in 1..100")
    _require(cfg, "train.lr", lambda v: isinstance(v, (int, float)) and v > 0, "a positive number")
    threshold = OmegaConf.select(cfg, "evaluate.threshold", default=None)
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
        raise ConfigError(f"config key 'evaluate.threshold' = {threshold!r}: expected null (the model's) "
                          "or a number in [0, 1]")
    for key in ("evaluate.iou_threshold", "augment.min_visibility"):
        _require(cfg, key, lambda v: isinstance(v, (int, float)) and 0 <= v <= 1, "a number in [0, 1]")
    _require(cfg, "split.method", lambda v: v in ("random", "grouped"), "random or grouped")
    fractions = [OmegaConf.select(cfg, f"split.{k}", default=None) for k in ("train", "val", "test")]
    if (any(not isinstance(f, (int, float)) or f < 0 for f in fractions)
            or abs(sum(fractions) - 1) > 1e-6 or fractions[0] == 0):
        raise ConfigError(f"config key 'split' = train {fractions[0]}, val {fractions[1]}, test {fractions[2]}: "
                          "expected fractions that add up to 1 with train > 0")


def tracking_uri(cfg: DictConfig) -> str:
    """Where MLflow records runs: tracking.uri, else $MLFLOW_TRACKING_URI, else the project's sqlite store."""
    if cfg.tracking.get("uri"):
        return str(cfg.tracking.uri)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{store_root() / 'mlflow.db'}"


def store_root() -> Path:
    """The project whose mlflow.db records the runs. A queued or ``--temp`` ``dvc exp run`` works in a
    temporary copy (.dvc/tmp/exps/...) without the git-ignored store, and DVC names the original
    repository in $DVC_ROOT: its runs land in that store rather than in one deleted with the copy."""
    original = os.environ.get("DVC_ROOT")
    if original and (Path(original) / "dvc.yaml").is_file() and (Path(original) / "conf").is_dir():
        return Path(original).resolve()
    return project_root()


@dataclass(frozen=True)
class StageSpec:
    """One stage of dvc.yaml: its param keys (``paths.collect``, ``train.lr``) and its deps (paths)."""

    name: str
    params: tuple[str, ...]
    deps: tuple[str, ...]


def stage_specs(root: Path | None = None) -> dict[str, StageSpec]:
    """Every stage of the project's dvc.yaml, in its order."""
    dvc_yaml = (root or project_root()) / "dvc.yaml"
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    specs = {}
    for name, stage in stages.items():
        params: list[str] = []
        for entry in stage.get("params", []):
            params += list(entry) if isinstance(entry, dict) else [str(entry)]  # {file: [keys]} or key
        deps = [next(iter(d)) if isinstance(d, dict) else str(d) for d in stage.get("deps", [])]
        specs[name] = StageSpec(name, tuple(params), tuple(deps))
    return specs


def stage_spec(name: str, root: Path | None = None) -> StageSpec:
    return stage_specs(root)[name]
