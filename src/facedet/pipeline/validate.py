"""Stage 0, validate: every value of params.yaml checked against conf/ before any stage does work.

DVC deletes a stage's outputs before it runs the stage's command, so a value rejected inside train
would cost the trained model. Every stage depends on this stage's ``ok.json``; when a value is
rejected here nothing else runs and nothing else is deleted. ``ok.json`` is the same for every valid
config (so a valid change re-runs only the stages that read it) and ``persist`` in dvc.yaml (so a
rejection leaves it too). A copy of the last valid params.yaml is kept beside it: a rejected
``dvc exp run -S`` puts params.yaml back to it (DVC wrote the rejected file; the results on disk
belong to the copy).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from facedet.config import validate

LAST_VALID = "last_valid_params.yaml"


def check(cfg: DictConfig) -> None:
    """Every rule before any work: each value and the rules between keys ([`facedet.config.validate`][]),
    the collect stage's sources ([`facedet.sources`][]) and the model ``train.init`` starts from (which must
    be there, in a file or the MLflow store, and be the network ``model.*`` describes)."""
    from facedet.sources import read_sources
    from facedet.training.finetune import check_init

    validate(cfg)
    raw = OmegaConf.select(cfg, "collect.sources", default=None)
    read_sources(OmegaConf.to_container(raw, resolve=True) if OmegaConf.is_config(raw) else raw, Path(cfg.paths.data))
    if cfg.train.init:
        check_init(cfg.model, str(cfg.train.init))


def run(cfg: DictConfig, params: Path = Path("params.yaml")) -> None:
    out = Path(cfg.paths.validate)
    out.mkdir(parents=True, exist_ok=True)
    check(cfg)  # also when called with a composed config (facedet run validate OVERRIDES)
    (out / "ok.json").write_text(json.dumps({"valid": True}) + "\n")
    if params.is_file() and OmegaConf.load(params) == cfg:
        shutil.copyfile(params, out / LAST_VALID)
    print(f"validate: {len(flat_keys(cfg))} config values checked against conf/: all valid")


def flat_keys(cfg: DictConfig) -> list[str]:
    keys: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            keys.append(prefix)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return keys


def put_back(params: Path) -> str:
    """After a rejection inside ``dvc exp run`` (which wrote the rejected params file): the file back as
    it was at the last valid run of this workspace (the copy whose values dvc.lock records for this
    stage); returns what was done, for the error message."""
    try:
        folder = OmegaConf.load(params).paths.validate
    except Exception:  # the rejected file may not even be YAML
        folder = "results/validate"
    last = Path(folder) / LAST_VALID
    if not (os.environ.get("DVC_EXP_BASELINE_REV") or os.environ.get("DVC_EXP_NAME")) or not last.is_file():
        return ""
    lock = Path("dvc.lock")
    locked = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).get("validate", {}) if lock.is_file() else {}
    if locked.get("params", {}).get(str(params)) != yaml.safe_load(last.read_text()):
        return f"; {params} keeps the rejected value (fix it, or: git checkout {params})"
    shutil.copyfile(last, params)
    return f"; {params} put back as it was (the last valid one, {last})"
