"""Model files: safetensors weights plus JSON metadata (network config, threshold, provenance).

Model files are untrusted input. Loading never unpickles anything: the network is rebuilt by name
from the metadata, after [`check_metadata`][] has checked every value's type and range, and after
a build on PyTorch's ``meta`` device (no memory) has shown that the network is not absurdly large
and that its tensors have exactly the names and shapes the file holds. Anything wrong raises
[`ModelFileError`][] ("FILE: problem").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from facedet.model import build_net

METADATA_KEY = "facedet"
MAX_PARAMETERS = 50_000_000  # 200 MB of float32; the bundled model has about 87 k
MAX_INPUT_SIZE = 2048

# What a model file may ask for: key -> (type, minimum, maximum) per network; lists give the length
# and the range of each element. A key that is absent takes the network's default.
_INT, _FLOAT, _BOOL = int, float, bool
MODEL_SCHEMA: dict[str, dict[str, tuple]] = {
    "dense": {
        "input_size": (_INT, 32, MAX_INPUT_SIZE),
        "detect_size": (_INT, 32, MAX_INPUT_SIZE),
        "widths": ((_INT, 5), 1, 1024),
        "depth": (_INT, 0, 8),
        "neck_width": (_INT, 1, 1024),
        "prior_prob": (_FLOAT, 1e-6, 1 - 1e-6),
        "landmarks": (_BOOL, None, None),
        "landmark_depth": (_INT, 0, 8),
    },
    "single_face": {
        "input_size": (_INT, 32, MAX_INPUT_SIZE),
        "width": (_FLOAT, 0.01, 4.0),
        "stages": ((_INT, 5), 0, 8),
        "hidden": (_INT, 1, 16384),
        "dropout": (_FLOAT, 0.0, 1.0),
        "batch_norm": (_BOOL, None, None),
    },
}


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


def save(net: nn.Module, model_cfg: dict, path: Path, **info: object) -> None:
    """Write the weights and ``{"model": model_cfg, **info}`` into one .safetensors file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps({"model": dict(model_cfg), **info})})


def _number_ok(value: object, kind: type, low: float | None, high: float | None) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind is int and not isinstance(value, int):
        return False
    return math.isfinite(value) and low <= value <= high


def check_metadata(metadata: object, where: str) -> dict:
    """The metadata when every value the loaders use is of the right type and in range; else
    ModelFileError naming the key. ``where``: the file, for the message."""
    if not isinstance(metadata, Mapping):
        raise ModelFileError(f"{where}: metadata is not a JSON object")
    threshold = metadata.get("threshold")
    if threshold is not None and not _number_ok(threshold, float, 0.0, 1.0):
        raise ModelFileError(f"{where}: metadata 'threshold' = {_shown(threshold)}: expected a number in [0, 1]")
    model = metadata.get("model")
    if not isinstance(model, Mapping):
        raise ModelFileError(f"{where}: metadata has no 'model' object (the network's settings)")
    name = model.get("name")
    if name not in MODEL_SCHEMA:
        raise ModelFileError(f"{where}: metadata 'model.name' = {_shown(name)}: expected one of {sorted(MODEL_SCHEMA)}")
    schema = MODEL_SCHEMA[name]
    for key, value in model.items():
        if key == "name":
            continue
        if key not in schema:
            raise ModelFileError(f"{where}: metadata 'model.{key}': not a setting of the {name} network")
        kind, low, high = schema[key]
        if isinstance(kind, tuple):
            kind, length = kind
            ok = isinstance(value, list) and len(value) == length and all(_number_ok(v, kind, low, high) for v in value)
            expected = f"a list of {length} {kind.__name__}s in [{low}, {high}]"
        else:
            ok = _number_ok(value, kind, low, high)
            expected = (
                "true or false" if kind is bool else f"a{'n' if kind is int else ''} {kind.__name__} in [{low}, {high}]"
            )
        if not ok:
            raise ModelFileError(f"{where}: metadata 'model.{key}' = {_shown(value)}: expected {expected}")
    return dict(metadata)


def _shown(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_metadata(path: Path) -> dict:
    """The file's facedet metadata (not yet checked); ModelFileError for a file that is not one."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"{path}: not a safetensors model file ({_reason(err)})") from None
    if METADATA_KEY not in metadata:
        raise ModelFileError(f"{path}: not a facedet model file (no '{METADATA_KEY}' metadata)")
    try:
        return json.loads(metadata[METADATA_KEY])
    except (ValueError, RecursionError) as err:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    text = "".join(c if c.isprintable() else "?" for c in str(err)) or type(err).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"{path}: not a safetensors model file ({_reason(err)})") from None


def load(path: Path) -> tuple[nn.Module, dict]:
    """The network in eval mode and the file's (checked) metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    metadata = check_metadata(read_metadata(path), str(path))
    try:
        with torch.device("meta"):  # the shapes only: no memory, whatever the settings ask for
            skeleton = build_net(metadata["model"])
    except (ValueError, TypeError) as err:
        raise ModelFileError(f"{path}: metadata 'model' cannot build a network ({_reason(err)})") from None
    parameters = sum(p.numel() for p in skeleton.parameters())
    if parameters > MAX_PARAMETERS:
        raise ModelFileError(f"{path}: the network would have {parameters} parameters (the limit is {MAX_PARAMETERS})")
    expected = {key: tuple(t.shape) for key, t in skeleton.state_dict().items()}
    found = _file_shapes(path)
    if found != expected:
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
        detail = (
            f"missing {missing[0]}"
            if missing
            else f"unexpected {extra[0]}"
            if extra
            else f"{wrong[0]} is {list(found[wrong[0]])}, the network's is {list(expected[wrong[0]])}"
        )
        raise ModelFileError(f"{path}: its tensors do not match the network its metadata describes ({detail})")
    net = build_net(metadata["model"])
    try:
        net.load_state_dict(load_file(str(path)))
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ModelFileError(f"{path}: cannot read its tensors ({_reason(err)})") from None
    return net.eval(), metadata


def average(paths: list[Path]) -> tuple[nn.Module, dict]:
    """The networks of ``paths`` (one network config) averaged weight by weight, batch-norm statistics
    included (a uniform "model soup" of runs from one start), and the first file's metadata."""
    loaded = [load(path) for path in paths]
    if any(metadata["model"] != loaded[0][1]["model"] for _, metadata in loaded):
        raise ModelFileError(f"{', '.join(map(str, paths))}: their network configs differ, so they cannot be averaged")
    states = [net.state_dict() for net, _ in loaded]
    net, metadata = loaded[0]
    net.load_state_dict(
        {
            key: (sum(state[key].double() for state in states) / len(states)).to(tensor.dtype)
            if tensor.is_floating_point()
            else tensor
            for key, tensor in states[0].items()
        }
    )
    return net.eval(), metadata
