"""The schema of the configuration: every key conf/ can compose, with the defaults it has there.

conf/ is the schema: a key added to a conf file is known at once, and the type of each value is
the type of its default there ([`facedet.config_rules`][] adds ranges and choices).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

# Groups that hold presets over other keys (# @package _global_), not keys of their own.
PRESET_GROUPS = ("experiment",)
# Mappings whose keys are free (checked by their reader): a search space's keys are config keys.
OPEN_KEYS = ("hparams_search.params",)
# Keys whose value must be one that some option of conf/ uses (the group's implementations).
CHOICE_KEYS = ("model.name", "loss.name", "labels.format", "split.method")


@dataclass(frozen=True)
class Schema:
    """Every key conf/ can compose (flat ``a.b.c``; lists are leaves) -> the defaults it has there."""

    defaults: dict[str, tuple[object, ...]]
    groups: dict[str, tuple[str, ...]]  # config group -> its options
    files: dict[str, tuple[str, ...]]  # key -> the conf/ files that hold it

    def closest(self, key: str) -> str:
        """`` (did you mean 'x'?)`` for the known key nearest to `key`, else ''."""
        parent, _, leaf = key.rpartition(".")
        siblings = {k.rpartition(".")[2]: k for k in self.defaults if k.rpartition(".")[0] == parent}
        match = [siblings[m] for m in difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)]
        match = match or difflib.get_close_matches(key, list(self.defaults), n=1, cutoff=0.8)
        return f" (did you mean '{match[0]}'?)" if match else ""


def flat_keys(node: object, prefix: str, into: dict[str, list[object]], top: str = "") -> None:
    """Every key under ``node`` (``a.b.c``, mappings included; the keys of ``OPEN_KEYS`` and of lists
    left out) -> its values, appended to ``into``."""
    if prefix != top:
        into.setdefault(prefix, []).append(node)
    if isinstance(node, dict) and prefix not in OPEN_KEYS:
        for key, value in node.items():
            if key != "defaults" or prefix != top:
                flat_keys(value, f"{prefix}.{key}" if prefix else str(key), into, top)


@lru_cache(maxsize=8)
def _schema(conf_dir: str, stamp: float) -> Schema:
    conf = Path(conf_dir)
    found: dict[str, list[object]] = {}
    files: dict[str, list[str]] = {}
    groups = {}
    for option in [conf / "config.yaml", *sorted(conf.glob("*/*.yaml"))]:
        group = option.parent.name if option.parent != conf else ""
        if group:
            groups.setdefault(group, []).append(option.stem)
        if group in PRESET_GROUPS:
            continue
        keys: dict[str, list[object]] = {}
        flat_keys(
            {group: yaml.safe_load(option.read_text()) or {}} if group else yaml.safe_load(option.read_text()), "", keys
        )
        for key, values in keys.items():
            found.setdefault(key, []).extend(values)
            files.setdefault(key, []).append(option.relative_to(conf.parent).as_posix())
    return Schema(
        {k: tuple(v) for k, v in found.items()},
        {g: tuple(o) for g, o in groups.items()},
        {k: tuple(v) for k, v in files.items()},
    )


def schema(conf_dir: Path) -> Schema:
    """The schema of this conf/ folder (re-read when a file in it changes)."""
    stamp = max((p.stat().st_mtime for p in Path(conf_dir).rglob("*.yaml")), default=0.0)
    return _schema(str(Path(conf_dir).resolve()), stamp)


def is_known(key: str, known: Schema) -> bool:
    """Whether a key is one of conf/'s, or lies inside a list or an open mapping of it."""
    if key in known.defaults:
        return True
    parent = key
    while "." in parent:  # inside a list (augment.transforms.2.p) or an open mapping
        parent = parent.rpartition(".")[0]
        if parent in OPEN_KEYS or (
            parent in known.defaults and any(isinstance(d, list) for d in known.defaults[parent])
        ):
            return True
    return False
