"""Compose the configuration from conf/ (Hydra) or read the params.yaml that DVC wrote from it, and
check every value before any work starts.

The schema is conf/ itself: the keys conf/ can compose are the known keys (so a key added to a conf
file is known at once), the type of each value is the type of its default there, and ``RULES`` adds
the ranges and choices a type cannot say. Dataclass structured configs would restate every key and
default that conf/ already holds; this keeps conf/ the one source of truth.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


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
    """The composed conf/config.yaml with Hydra overrides such as ``train.max_epochs=2``, checked."""
    conf_dir = (root or project_root()) / "conf"
    overrides = list(overrides or [])
    check_overrides(overrides, conf_dir)
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:  # what check_overrides cannot foresee
        raise ConfigError(_composition_error(err, overrides, conf_dir)) from None
    validate(cfg, conf_dir)
    return cfg


def _composition_error(err: Exception, overrides: list[str], conf_dir: Path) -> str:
    first = str(err).splitlines()[0]
    if first.startswith("Could not override '"):
        key = first.split("'")[1]
        owners = ", ".join(schema(conf_dir).files.get(key, ()))
        return (
            f"config key '{key}' is not in this composition (it is a key of {owners}: select that option, "
            f"e.g. {key.split('.')[0]}={Path(owners.split(', ')[0]).stem})"
        )
    return f"overrides {' '.join(overrides)}: {first}"


def load_params(path: Path) -> DictConfig:
    """The params.yaml DVC composed from conf/ (what `dvc repro` runs with), checked."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such params file (run from the project root)")
    try:
        cfg = OmegaConf.load(path)
    except (yaml.YAMLError, OmegaConfBaseException) as err:
        raise ConfigError(f"{path}: not a YAML mapping ({str(err).splitlines()[0]})") from None
    try:
        root = project_root(path.parent)
    except ConfigError:  # a params file kept elsewhere: the conf/ of the project we are in
        root = project_root()
    validate(cfg, root / "conf")
    return cfg


# --- the schema: what conf/ composes --------------------------------------------------------------

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


def _flat(node: object, prefix: str, into: dict[str, list[object]], top: str = "") -> None:
    if prefix != top:
        into.setdefault(prefix, []).append(node)
    if isinstance(node, dict) and prefix not in OPEN_KEYS:
        for key, value in node.items():
            if key != "defaults" or prefix != top:
                _flat(value, f"{prefix}.{key}" if prefix else str(key), into, top)


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
        _flat(
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


def derived_keys(conf_dir: Path) -> set[str]:
    """Keys that conf/ sets only by interpolation (``optimizer.lr: ${train.lr}``): they follow another
    key, so they are never a setting of their own when runs or presets are told apart."""
    return {
        key
        for key, values in schema(conf_dir).defaults.items()
        if values and all(isinstance(v, str) and "${" in v for v in values)
    }


def check_overrides(overrides: list[str], conf_dir: Path) -> None:
    """Unknown keys and group options in Hydra overrides, named in one line with the closest valid one."""
    known = schema(conf_dir)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.lstrip("+~")
        if not sep or key.startswith("hydra"):
            continue
        if key in known.groups:
            options = known.groups[key]
            if value not in options and value != "null":
                match = difflib.get_close_matches(value, options, n=1)
                hint = f" (did you mean '{match[0]}'?)" if match else ""
                raise ConfigError(
                    f"config group '{key}' has no option '{value}'{hint}; options: {', '.join(options)} (conf/{key}/)"
                )
        elif not _known(key, known):
            raise ConfigError(f"config key '{key}' is not known{known.closest(key)}; the known keys are those of conf/")


def _known(key: str, known: Schema) -> bool:
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


# --- the values ---------------------------------------------------------------------------------

Check = tuple[Callable[[object], bool], str]


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _integer(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _between(low: float, high: float, integer: bool = False, low_open: bool = False) -> Check:
    test = _integer if integer else _number
    kind = "an integer" if integer else "a number"
    bracket = "(" if low_open else "["
    return (
        (lambda v: test(v) and (low < v if low_open else low <= v) and v <= high),
        f"{kind} in {bracket}{low:g}, {high:g}]",
    )


def _at_least(low: float, integer: bool = True) -> Check:
    test = _integer if integer else _number
    return lambda v: test(v) and v >= low, f"{'an integer' if integer else 'a number'} >= {low:g}"


POSITIVE_INT: Check = (lambda v: _integer(v) and v > 0, "a positive integer")
POSITIVE: Check = (lambda v: _number(v) and v > 0, "a positive number")
FRACTION = _between(0, 1)
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")

# Ranges and choices beyond the type of the default in conf/ (keys: fnmatch patterns).
RULES: dict[str, Check] = {
    "seed": _at_least(0),
    "collect.max_side": POSITIVE_INT,
    "collect.jpeg_quality": _between(1, 100, integer=True),
    "split.train": FRACTION,
    "split.val": FRACTION,
    "split.test": FRACTION,
    "augment.copies": (lambda v: _integer(v) and v >= 0, "0 (online augmentation) or a positive integer"),
    "augment.min_face": _at_least(0, integer=False),
    "augment.preview_images": POSITIVE_INT,
    "augment.preview_draws": POSITIVE_INT,
    "augment.stats_images": _at_least(0),
    "augment.min_visibility": FRACTION,
    "augment.transforms": (
        lambda v: (
            isinstance(v, list)
            and all(
                isinstance(t, dict)
                and str(t.get("_target_", "")).startswith("albumentations.")
                and (t.get("p") is None or FRACTION[0](t["p"]))
                for t in v
            )
        ),
        "a list of {_target_: albumentations.NAME, ...} with p in [0, 1]",
    ),
    "model.input_size": POSITIVE_INT,
    "model.detect_size": POSITIVE_INT,
    "model.widths": (
        lambda v: isinstance(v, list) and len(v) == 5 and all(POSITIVE_INT[0](w) for w in v),
        "5 positive integers (channels at strides 2, 4, 8, 16, 32)",
    ),
    "model.depth": _at_least(0),
    "model.neck_width": POSITIVE_INT,
    "model.prior_prob": _between(0, 1, low_open=True),
    "model.landmarks": (lambda v: isinstance(v, bool), "true or false"),
    "model.width": POSITIVE,
    "model.stages": (lambda v: isinstance(v, list) and all(POSITIVE_INT[0](s) for s in v), "positive integers"),
    "model.hidden": POSITIVE_INT,
    "model.dropout": FRACTION,
    "loss.face_weight": _at_least(0, integer=False),
    "loss.box_weight": _at_least(0, integer=False),
    "loss.face_loss": (lambda v: v in ("qfl", "focal"), "qfl or focal"),
    "loss.gamma": _at_least(0, integer=False),
    "loss.alpha": FRACTION,
    "loss.iou_type": (lambda v: v in ("iou", "giou", "diou", "eiou"), "one of iou, giou, diou, eiou"),
    "loss.topk": POSITIVE_INT,
    "loss.anchor_scale": POSITIVE,
    "loss.landmark_weight": _at_least(0, integer=False),
    "loss.landmark_loss": (lambda v: v in ("smooth_l1", "wing"), "smooth_l1 or wing"),
    "train.max_epochs": POSITIVE_INT,
    "train.batch_size": POSITIVE_INT,
    "train.lr": POSITIVE,
    "train.weight_decay": _at_least(0, integer=False),
    "train.num_workers": _at_least(0),
    "train.limit_train_batches": (
        lambda v: v is None or POSITIVE_INT[0](v) or _between(0, 1, low_open=True)[0](v),
        "null (all), a number of batches or a fraction in (0, 1]",
    ),
    "train.accelerator": (lambda v: v in ACCELERATORS, " or ".join(ACCELERATORS)),
    "train.strategy": (
        lambda v: isinstance(v, str) and v.startswith(("auto", "ddp", "fsdp", "deepspeed", "single_device")),
        "a Lightning strategy name (auto, ddp, ddp_spawn, fsdp, ...)",
    ),
    "train.devices": (
        lambda v: v == "auto" or POSITIVE_INT[0](v) or (isinstance(v, list) and all(_at_least(0)[0](d) for d in v)),
        "auto, a number of devices or a list of device indices",
    ),
    "train.num_nodes": POSITIVE_INT,
    "train.val_every": POSITIVE_INT,
    "train.init": (
        lambda v: v is None or (isinstance(v, str) and v != ""),
        "null (from scratch), bundled, a model file, models:/... or runs:/...",
    ),
    "train.precision": (
        lambda v: str(v) in ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true"),
        "a Lightning precision (32-true, bf16-mixed, 16-mixed, ...)",
    ),
    "train.deterministic": (lambda v: v in (True, False, "warn"), "true, false or warn"),
    "train.pin_memory": (lambda v: isinstance(v, bool), "true or false"),
    "scheduler.warmup_steps": _at_least(0),
    "scheduler.warmup_ratio": FRACTION,
    "scheduler.min_ratio": FRACTION,
    "scheduler.pct_start": _between(0, 1, low_open=True),
    "evaluate.threshold": (lambda v: v is None or FRACTION[0](v), "null (the model's) or a number in [0, 1]"),
    "evaluate.iou_threshold": _between(0, 1, low_open=True),
    "evaluate.grid_images": _at_least(0),
    "evaluate.robustness_images": (lambda v: v is None or POSITIVE_INT[0](v), "null (all) or a positive integer"),
    "tracking.uri": (lambda v: v is None or (isinstance(v, str) and v != ""), "null or a tracking URI"),
    "tracking.experiment": (lambda v: isinstance(v, str) and v != "", "an experiment name"),
    "hparams_search.n_trials": POSITIVE_INT,
    "hparams_search.write_min": (lambda v: v is None or _number(v), "null (always write the preset) or a number"),
    "hparams_search.direction": (lambda v: v in ("maximize", "minimize"), "maximize or minimize"),
}


def _expected_type(defaults: tuple[object, ...]) -> Check | None:
    """What the defaults in conf/ say about a value's type (None: they say nothing, e.g. all null)."""
    if any(isinstance(d, str) and "${" in d for d in defaults):
        return None  # an interpolation (optimizer.lr: ${train.lr}): its target's type is checked there
    kinds = {type(d) for d in defaults if d is not None}
    if not kinds:
        return None
    nullable = any(d is None for d in defaults)
    names, tests = [], []
    if bool in kinds:
        names.append("true or false")
        tests.append(lambda v: isinstance(v, bool))
    if float in kinds:
        names.append("a number")
        tests.append(_number)
    elif int in kinds:
        names.append("an integer")
        tests.append(_integer)
    if str in kinds:
        names.append("a string")
        tests.append(lambda v: isinstance(v, str))
    if list in kinds:
        names.append("a list")
        tests.append(lambda v: isinstance(v, list))
    if dict in kinds:
        names.append("a mapping")
        tests.append(lambda v: isinstance(v, dict))
    if nullable:
        names.insert(0, "null")
    return (lambda v: (nullable and v is None) or any(t(v) for t in tests)), " or ".join(names)


def _rule(key: str) -> Check | None:
    if key in RULES:
        return RULES[key]
    return next((check for pattern, check in RULES.items() if fnmatchcase(key, pattern)), None)


def _fail(key: str, value: object, expected: str) -> ConfigError:
    return ConfigError(f"config key '{key}' = {value!r}: expected {expected}")


def validate(cfg: DictConfig, conf_dir: Path | None = None) -> None:
    """Check every key and value of a composed config against conf/ (``conf_dir``, default the
    project's) and ``RULES``; the first problem is a one-line ConfigError naming the key."""
    known = schema(conf_dir or project_root() / "conf")
    try:
        values = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"config key '{getattr(err, 'full_key', '?')}': {str(err).splitlines()[0]}") from None
    flat: dict[str, list[object]] = {}
    _flat(values, "", flat)
    for key, (value,) in flat.items():
        if key not in known.defaults:
            if not _known(key, known):
                raise ConfigError(
                    f"config key '{key}' is not known{known.closest(key)}; the known keys are those of conf/"
                )
            continue
        if key in CHOICE_KEYS:
            choices = sorted({str(d) for d in known.defaults[key]})
            if value not in choices:
                raise _fail(key, value, "one of " + ", ".join(choices))
        check = _rule(key) or _expected_type(known.defaults[key])
        if check is not None and not check[0](value):
            raise _fail(key, value, check[1])
    _relations(values)


def _relations(values: dict) -> None:
    """The rules between keys."""
    if "callbacks" in values and not (values["callbacks"] or {}).get("best_checkpoint"):
        raise ConfigError("config key 'callbacks.best_checkpoint' is missing: the train stage keeps the best epoch")
    split = values.get("split") or {}
    fractions = [split.get(k) for k in ("train", "val", "test")]
    if all(_number(f) for f in fractions) and (abs(sum(fractions) - 1) > 1e-6 or fractions[0] == 0):
        raise ConfigError(
            f"config key 'split' = train {fractions[0]}, val {fractions[1]}, test {fractions[2]}: "
            "expected fractions that add up to 1 with train > 0"
        )
    model = values.get("model") or {}
    for key in ("input_size", "detect_size"):
        if model.get("name") == "dense" and model.get(key, 0) % 32:
            raise _fail(f"model.{key}", model[key], "a multiple of 32 for the dense model (strides 8-32)")
