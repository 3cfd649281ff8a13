"""What a run is called, tagged and described with: git and DVC facts, the settings that differ.

Nothing here talks to MLflow or changes the process: every function reads the project folder it is
given (its git history, data.dvc, conf/) and the variables DVC sets in a ``dvc exp run``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from facedet.config import ConfigError, compose_config, derived_keys

# MLflow rejects longer parameter values.
MAX_PARAM_LENGTH = 6000
# Config sections a run name leaves out: where files go and where runs are recorded.
UNNAMED_SECTIONS = ("paths", "tracking", "hparams_search")


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    """A nested dict (or config) as flat ``a.b.c`` keys; lists and empty dicts kept whole as leaves."""
    if OmegaConf.is_config(tree):
        tree = OmegaConf.to_container(tree, resolve=True)
    if not isinstance(tree, dict) or not tree:
        return {prefix: tree}
    flat: dict[str, object] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def config_params(cfg: DictConfig) -> dict[str, str]:
    """The composed config as MLflow params: flat keys, text values, long ones cut with '...'."""
    texts = {key: str(value) for key, value in flatten(cfg).items()}
    return {k: v if len(v) <= MAX_PARAM_LENGTH else v[: MAX_PARAM_LENGTH - 3] + "..." for k, v in texts.items()}


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=root).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def data_pointer(root: Path) -> dict[str, object] | None:
    """The first out of ``root``/data.dvc (path, md5, ...), None without it."""
    data_dvc = root / "data.dvc"
    if not data_dvc.is_file():
        return None
    return ((yaml.safe_load(data_dvc.read_text()) or {}).get("outs") or [{}])[0]


def run_tags(root: Path) -> dict[str, str]:
    """Git commit and dirty flag, the data hash pinned by data.dvc and the DVC experiment (in a
    ``dvc exp run``) of the project at ``root``."""
    tags = {
        "git.commit": _git(root, "rev-parse", "HEAD") or "unknown",
        "git.dirty": str(bool(_git(root, "status", "--porcelain", "--untracked-files=no"))),
    }
    data = data_pointer(root)
    if data is not None:
        tags["data.md5"] = str(data.get("md5", "unknown"))
    if os.environ.get("DVC_EXP_NAME"):  # set by `dvc exp run` (workspace, --temp and queued alike)
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("DVC_EXP_BASELINE_REV"):
        tags["dvc.baseline_rev"] = os.environ["DVC_EXP_BASELINE_REV"]
    return tags


def reference_settings(root: Path) -> tuple[dict[str, str], str]:
    """(flat settings, what they are) that a run is told apart from: in a DVC experiment the params.yaml
    of its baseline commit, else the committed params.yaml (what `dvc repro` runs), else conf/'s defaults."""
    rev = os.environ.get("DVC_EXP_BASELINE_REV") or "HEAD"
    committed = _git(root, "show", f"{rev}:params.yaml")
    if committed:
        short = _git(root, "rev-parse", "--short", rev)
        return config_params(OmegaConf.create(yaml.safe_load(committed))), f"params.yaml of {short}"
    try:
        return config_params(compose_config([], root=root)), "the defaults of conf/"
    except Exception:  # no conf/ here (a params file used elsewhere): nothing to compare with
        return {}, "nothing"


def changed_settings(cfg: DictConfig, root: Path) -> tuple[dict[str, str], str]:
    """(the settings of `cfg` that differ from [`reference_settings`][], what they are compared with);
    paths, tracking and the search config left out."""
    reference, what = reference_settings(root)
    try:
        derived = derived_keys(root / "conf")
    except ConfigError:  # no conf/ here
        derived = set()
    return {
        key: value
        for key, value in config_params(cfg).items()
        if key.split(".")[0] not in UNNAMED_SECTIONS and key not in derived and reference.get(key) != value
    }, what


def _compact_number(value: str) -> str:
    """``0.00123456`` -> ``0.00123``; integers and words unchanged."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() else f"{number:.3g}"


def describe_run(
    cfg: DictConfig, root: Path, prefix: str | None = None, tags: dict[str, str] | None = None, limit: int = 90
) -> tuple[str, str]:
    """(run name, description): the DVC experiment or sweep trial (``tags`` of the run), then what
    differs: a sweep trial's searched values, else the settings that differ from the baseline
    (``as committed`` or ``defaults`` when none), e.g.
    ``dense lr-high: train.lr=0.005`` or ``dense sample_optuna trial 3: lr=0.0013 neck_width=64``."""
    tags = {**run_tags(root), **(tags or {})}
    who = ([tags["dvc.experiment"]] if "dvc.experiment" in tags else []) + (
        [f"{tags.get('sweep.name', 'sweep')} trial {tags['sweep.trial']}"] if "sweep.trial" in tags else []
    )
    changes, reference = changed_settings(cfg, root)
    # A sweep trial shows what the sweep chose for it, not what its base overrides set.
    shown = json.loads(tags["sweep.values"]) if "sweep.values" in tags else changes
    text = " ".join(
        f"{key.split('.')[-1] if key.count('.') > 1 else key}={_compact_number(str(value))}"
        for key, value in shown.items()
    )
    what = text if len(text) <= limit else text[: limit - 1] + "\u2026"
    same = "defaults" if reference.startswith("the defaults") else "as committed"
    name = " ".join(p for p in (prefix, ": ".join([*who, what or same])) if p)
    if changes:
        lines = [f"Settings that differ from {reference}:", "", *(f"- `{k}` = `{v}`" for k, v in changes.items())]
    else:
        lines = [f"The settings of {reference}."]
    return name, "\n".join([f"**{name}**", "", *lines])
