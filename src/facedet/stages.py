"""The pipeline's stages as the project states them: dvc.yaml's stages in their order, each with its
param keys and deps ([`StageSpec`][]), and where each writes by default (conf/paths/default.yaml)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from facedet.config import ConfigError, project_root


def stage_folder(stage: str, start: Path | None = None) -> Path | None:
    """Where ``stage`` writes by default (``conf/paths/default.yaml``) in the project at or above
    ``start`` (default: the current folder), as a path from the current folder; None outside a project."""
    try:
        root = project_root(start)
    except ConfigError:
        return None
    paths = yaml.safe_load((root / "conf" / "paths" / "default.yaml").read_text()) or {}
    return Path(os.path.relpath(root / str(paths[stage]))) if stage in paths else None


@dataclass(frozen=True)
class StageSpec:
    """One stage of dvc.yaml: its param keys (``paths.collect``, ``train.lr``) and its deps (paths);
    ``all_params``: it tracks the whole params file (the validate stage)."""

    name: str
    params: tuple[str, ...]
    deps: tuple[str, ...]
    all_params: bool = False


def stage_specs(root: Path | None = None) -> dict[str, StageSpec]:
    """Every stage of the project's dvc.yaml, in its order."""
    dvc_yaml = (root or project_root()) / "dvc.yaml"
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    specs = {}
    for name, stage in stages.items():
        params: list[str] = []
        whole_file = False
        for entry in stage.get("params", []):
            if isinstance(entry, dict):  # {file: [keys]}; {file: null} tracks every key of the file
                for keys in entry.values():
                    params += [str(k) for k in keys or []]
                    whole_file = whole_file or not keys
            else:
                params.append(str(entry))
        deps = [next(iter(d)) if isinstance(d, dict) else str(d) for d in stage.get("deps", [])]
        specs[name] = StageSpec(name, tuple(params), tuple(deps), whole_file)
    return specs


def stage_spec(name: str, root: Path | None = None) -> StageSpec:
    return stage_specs(root)[name]
