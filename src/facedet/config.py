"""Compose the configuration from conf/ (Hydra) or read the params.yaml that DVC wrote from it, and
check every value before any work starts.

The schema is conf/ itself ([`facedet.config_schema`][]): the keys conf/ can compose are the known keys
(so a key added to a conf file is known at once), the type of each value is the type of its default
there, and `facedet.config_rules.RULES` adds the ranges and choices a type cannot say. Dataclass
structured configs would restate every key and default that conf/ already holds; this keeps conf/
the one source of truth.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from facedet.config_rules import expected_type, is_number, rule_for
from facedet.config_schema import CHOICE_KEYS, flat_keys, is_known, schema


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
        elif not is_known(key, known):
            raise ConfigError(f"config key '{key}' is not known{known.closest(key)}; the known keys are those of conf/")


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
    flat_keys(values, "", flat)
    for key, (value,) in flat.items():
        if key not in known.defaults:
            if not is_known(key, known):
                raise ConfigError(
                    f"config key '{key}' is not known{known.closest(key)}; the known keys are those of conf/"
                )
            continue
        if key in CHOICE_KEYS:
            choices = sorted({str(d) for d in known.defaults[key]})
            if value not in choices:
                raise _fail(key, value, "one of " + ", ".join(choices))
        check = rule_for(key) or expected_type(known.defaults[key])
        if check is not None and not check[0](value):
            raise _fail(key, value, check[1])
    _relations(values)


def _relations(values: dict) -> None:
    """The rules between keys."""
    if "callbacks" in values and not (values["callbacks"] or {}).get("best_checkpoint"):
        raise ConfigError("config key 'callbacks.best_checkpoint' is missing: the train stage keeps the best epoch")
    split = values.get("split") or {}
    fractions = [split.get(k) for k in ("train", "val", "test")]
    if all(is_number(f) for f in fractions) and (abs(sum(fractions) - 1) > 1e-6 or fractions[0] == 0):
        raise ConfigError(
            f"config key 'split' = train {fractions[0]}, val {fractions[1]}, test {fractions[2]}: "
            "expected fractions that add up to 1 with train > 0"
        )
    model = values.get("model") or {}
    train = values.get("train") or {}
    if train.get("trainable") == "landmarks" and not (model.get("landmarks") and train.get("init")):
        raise _fail(
            "train.trainable", "landmarks", "all, or landmarks with model.landmarks=true and a train.init to start from"
        )
    for key in ("input_size", "detect_size"):
        if model.get("name") == "dense" and model.get(key, 0) % 32:
            raise _fail(f"model.{key}", model[key], "a multiple of 32 for the dense model (strides 8-32)")
