"""The search space: ``hparams_search.params`` in Hydra's sweep syntax -> Optuna distributions, and
the overrides that set a trial's values."""

from __future__ import annotations

import json
import math
from pathlib import Path

from facedet.config import ConfigError

DEFAULT_SEARCH = "sample_optuna"


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(overrides of the search config ``hparams_search...``, overrides of the pipeline config)."""
    search, base = [], []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        (search if key == "hparams_search" or key.startswith("hparams_search.") else base).append(item)
    if not any(item.split("=", 1)[0].lstrip("+") == "hparams_search" for item in search):
        search.insert(0, f"hparams_search={DEFAULT_SEARCH}")
    return search, base


def parse_space(params: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """(key -> Optuna distribution, key -> fixed value) from ``hparams_search.params``."""
    import optuna.distributions as D
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    parser = OverridesParser.create()
    space: dict[str, object] = {}
    fixed: dict[str, object] = {}
    for key, text in params.items():
        try:
            override = parser.parse_override(f"{key}={text}")
        except Exception as err:
            raise ConfigError(f"config key 'hparams_search.params.{key}' = {text!r}: {err}") from None
        value = override.value()
        where = f"config key 'hparams_search.params.{key}' = {text!r}"
        if not override.is_sweep_override():
            fixed[key] = value
        elif isinstance(value, ChoiceSweep):
            space[key] = D.CategoricalDistribution([_plain(v) for v in value.list])
        elif isinstance(value, IntervalSweep):
            log_scale = "log" in value.tags
            if value.start >= value.end:
                raise ConfigError(f"{where}: expected interval(low, high) with low < high")
            if isinstance(value.start, int) and isinstance(value.end, int):
                space[key] = D.IntDistribution(int(value.start), int(value.end), log=log_scale)
            else:
                space[key] = D.FloatDistribution(float(value.start), float(value.end), log=log_scale)
        elif isinstance(value, RangeSweep):
            start, stop, step = value.start, value.stop, value.step or 1
            count = math.ceil((stop - start) / step)
            if count < 1:
                raise ConfigError(f"{where}: an empty range")
            last = round(start + (count - 1) * step, 12)
            if all(isinstance(v, int) for v in (start, stop, step)):
                space[key] = D.IntDistribution(int(start), int(last), step=int(step))
            else:
                space[key] = D.FloatDistribution(float(start), float(last), step=float(step))
        else:
            raise ConfigError(f"{where}: expected interval(...), tag(log, interval(...)), range(...) or choice(...)")
    if not space:
        raise ConfigError("config key 'hparams_search.params': nothing to search (no interval/range/choice)")
    return space, fixed


def _plain(value: object) -> object:
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)


def override_text(key: str, value: object) -> str:
    """``key=value`` in Hydra's override grammar (strings quoted, floats exact)."""
    if isinstance(value, str):
        return f"{key}={json.dumps(value)}"
    if value is None:
        return f"{key}=null"
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    return f"{key}={value!r}"


def trial_overrides(values: dict[str, object], conf_dir: Path) -> list[str]:
    """The overrides that set ``values``: ``group=option`` for a config group (``callbacks=ema``),
    [`override_text`][] for a value."""
    return [f"{k}={v}" if (conf_dir / k).is_dir() else override_text(k, v) for k, v in values.items()]


def suggest(trial, key: str, dist) -> object:
    import optuna.distributions as D

    if isinstance(dist, D.CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, D.IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def extremes(space: dict[str, object], pick: int) -> dict[str, object]:
    """The first (``pick`` 0) or last (-1) value of every distribution: a range's low or high end."""
    import optuna.distributions as D

    return {
        key: dist.choices[pick] if isinstance(dist, D.CategoricalDistribution) else (dist.low, dist.high)[pick]
        for key, dist in space.items()
    }
