"""What a configuration value may be: the type its defaults in conf/ say, and ``RULES``, the ranges
and choices a type cannot say (keys are fnmatch patterns)."""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase

Check = tuple[Callable[[object], bool], str]


def is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_integer(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def between(low: float, high: float, integer: bool = False, low_open: bool = False) -> Check:
    test = is_integer if integer else is_number
    kind = "an integer" if integer else "a number"
    bracket = "(" if low_open else "["
    return (
        (lambda v: test(v) and (low < v if low_open else low <= v) and v <= high),
        f"{kind} in {bracket}{low:g}, {high:g}]",
    )


def at_least(low: float, integer: bool = True) -> Check:
    test = is_integer if integer else is_number
    return lambda v: test(v) and v >= low, f"{'an integer' if integer else 'a number'} >= {low:g}"


POSITIVE_INT: Check = (lambda v: is_integer(v) and v > 0, "a positive integer")
POSITIVE: Check = (lambda v: is_number(v) and v > 0, "a positive number")
FRACTION = between(0, 1)
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")

# Ranges and choices beyond the type of the default in conf/ (keys: fnmatch patterns).
RULES: dict[str, Check] = {
    "seed": at_least(0),
    "collect.max_side": POSITIVE_INT,
    "collect.jpeg_quality": between(1, 100, integer=True),
    "split.seed": at_least(0),
    "split.train": FRACTION,
    "split.val": FRACTION,
    "split.test": FRACTION,
    "augment.copies": (lambda v: is_integer(v) and v >= 0, "0 (online augmentation) or a positive integer"),
    "augment.min_face": at_least(0, integer=False),
    "augment.preview_images": POSITIVE_INT,
    "augment.preview_draws": POSITIVE_INT,
    "augment.stats_images": at_least(0),
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
    "model.depth": at_least(0),
    "model.neck_width": POSITIVE_INT,
    "model.prior_prob": between(0, 1, low_open=True),
    "model.landmarks": (lambda v: isinstance(v, bool), "true or false"),
    "model.landmark_depth": at_least(0),
    "model.width": POSITIVE,
    "model.stages": (lambda v: isinstance(v, list) and all(POSITIVE_INT[0](s) for s in v), "positive integers"),
    "model.hidden": POSITIVE_INT,
    "model.dropout": FRACTION,
    "loss.face_weight": at_least(0, integer=False),
    "loss.box_weight": at_least(0, integer=False),
    "loss.face_loss": (lambda v: v in ("qfl", "focal"), "qfl or focal"),
    "loss.gamma": at_least(0, integer=False),
    "loss.alpha": FRACTION,
    "loss.iou_type": (lambda v: v in ("iou", "giou", "diou", "eiou"), "one of iou, giou, diou, eiou"),
    "loss.topk": POSITIVE_INT,
    "loss.anchor_scale": POSITIVE,
    "loss.landmark_weight": at_least(0, integer=False),
    "loss.landmark_loss": (lambda v: v in ("smooth_l1", "wing"), "smooth_l1 or wing"),
    "train.max_epochs": POSITIVE_INT,
    "train.batch_size": POSITIVE_INT,
    "train.lr": POSITIVE,
    "train.weight_decay": at_least(0, integer=False),
    "train.num_workers": at_least(0),
    "train.limit_train_batches": (
        lambda v: v is None or POSITIVE_INT[0](v) or between(0, 1, low_open=True)[0](v),
        "null (all), a number of batches or a fraction in (0, 1]",
    ),
    "train.accelerator": (lambda v: v in ACCELERATORS, " or ".join(ACCELERATORS)),
    "train.strategy": (
        lambda v: isinstance(v, str) and v.startswith(("auto", "ddp", "fsdp", "deepspeed", "single_device")),
        "a Lightning strategy name (auto, ddp, ddp_spawn, fsdp, ...)",
    ),
    "train.devices": (
        lambda v: v == "auto" or POSITIVE_INT[0](v) or (isinstance(v, list) and all(at_least(0)[0](d) for d in v)),
        "auto, a number of devices or a list of device indices",
    ),
    "train.num_nodes": POSITIVE_INT,
    "train.val_every": POSITIVE_INT,
    "train.init": (
        lambda v: v is None or (isinstance(v, str) and v != ""),
        "null (from scratch), bundled, a model file, models:/... or runs:/...",
    ),
    "train.trainable": (lambda v: v in ("all", "landmarks"), "all or landmarks"),
    "train.precision": (
        lambda v: str(v) in ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true"),
        "a Lightning precision (32-true, bf16-mixed, 16-mixed, ...)",
    ),
    "train.deterministic": (lambda v: v in (True, False, "warn"), "true, false or warn"),
    "train.pin_memory": (lambda v: isinstance(v, bool), "true or false"),
    "scheduler.warmup_steps": at_least(0),
    "scheduler.warmup_ratio": FRACTION,
    "scheduler.min_ratio": FRACTION,
    "scheduler.pct_start": between(0, 1, low_open=True),
    "evaluate.threshold": (lambda v: v is None or FRACTION[0](v), "null (the model's) or a number in [0, 1]"),
    "evaluate.iou_threshold": between(0, 1, low_open=True),
    "evaluate.grid_images": at_least(0),
    "evaluate.robustness_images": (lambda v: v is None or POSITIVE_INT[0](v), "null (all) or a positive integer"),
    "tracking.uri": (lambda v: v is None or (isinstance(v, str) and v != ""), "null or a tracking URI"),
    "tracking.experiment": (lambda v: isinstance(v, str) and v != "", "an experiment name"),
    "hparams_search.n_trials": POSITIVE_INT,
    "hparams_search.write_min": (lambda v: v is None or is_number(v), "null (always write the preset) or a number"),
    "hparams_search.direction": (lambda v: v in ("maximize", "minimize"), "maximize or minimize"),
}


def expected_type(defaults: tuple[object, ...]) -> Check | None:
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
        tests.append(is_number)
    elif int in kinds:
        names.append("an integer")
        tests.append(is_integer)
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


def rule_for(key: str) -> Check | None:
    """The rule of ``RULES`` for a key: its own, else the first pattern it matches, else None."""
    if key in RULES:
        return RULES[key]
    return next((check for pattern, check in RULES.items() if fnmatchcase(key, pattern)), None)
