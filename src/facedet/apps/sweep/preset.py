"""The preset a sweep writes: ``conf/experiment/<name>.yaml`` that turns the defaults into the best trial."""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from facedet.config import compose_config, derived_keys

# Groups that never go into a written preset's defaults list (a preset cannot select presets).
NOT_PRESET_GROUPS = ("experiment", "hparams_search")
_SAME = object()


def _group_overrides(overrides: list[str], conf_dir: Path) -> list[tuple[str, str]]:
    """(group, choice) for the overrides that select a config group (``model=dense``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    chosen = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if (conf_dir / key).is_dir() and not override.is_delete() and key not in NOT_PRESET_GROUPS:
            chosen.append((key, str(override.value())))
    return chosen


def _diff(new: object, old: object) -> object:
    """The parts of `new` that differ from `old` (dicts by key; anything else, lists too, whole)."""
    if isinstance(new, dict) and isinstance(old, dict):
        out = {}
        for key, value in new.items():
            sub = value if key not in old else _diff(value, old[key])
            if sub is not _SAME:
                out[key] = sub
        return out or _SAME
    return _SAME if new == old else new


def _drop(tree: dict, key: str) -> None:
    """Remove the dotted ``key`` from the nested dict, if there."""
    parent, _, leaf = key.rpartition(".")
    node = tree
    for part in parent.split(".") if parent else []:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        node.pop(leaf, None)


def preset_text(best: DictConfig, base_overrides: list[str], root: Path, header: str) -> str:
    """An ``# @package _global_`` preset that turns the default config into `best` (paths excepted)."""
    groups = _group_overrides(base_overrides, root / "conf")
    reference = compose_config([f"{g}={c}" for g, c in groups], root=root)
    new = OmegaConf.to_container(best, resolve=True)
    old = OmegaConf.to_container(reference, resolve=True)
    # Where files go, where runs are recorded, the search itself, and the keys that follow the keys
    # they interpolate are no settings of a preset.
    for key in ("paths", "hparams_search", "tracking.uri", *derived_keys(root / "conf")):
        for tree in (new, old):
            _drop(tree, key)
    changes = _diff(new, old)
    body: dict[str, object] = {}
    if groups:
        body["defaults"] = [{f"override /{g}": c} for g, c in groups]
    if changes is not _SAME:
        body.update(changes)
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return "# @package _global_\n" + lines + yaml.safe_dump(body, sort_keys=False)
