"""Fine-tuning: start training from a model file's weights instead of random ones (``train.init``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from omegaconf import OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from facedet.config import ConfigError
from facedet.inference.detector import MODEL_URI_SCHEMES, resolve_bundled
from facedet.model import weights
from facedet.tracking import Tracker, resolve_model_uri

# Keys of cfg.model that do not shape the weights: a model trained at one input size fine-tunes at another.
# A box-only model also starts a landmark one (its landmark branch starts fresh, of any depth); files
# made before landmarks existed have no "landmarks" key (false).
_FREE_KEYS = {"input_size", "detect_size", "landmarks"}
# Keys of the landmark branch, with the value of files made before the key existed.
_LANDMARK_KEYS = {"landmark_depth": 0}


def init_file(init: str, tracker: Tracker | None = None) -> Path:
    """``bundled`` (the package's model), ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION`` /
    ``runs:/ID`` (in ``tracker``'s MLflow store, default: the project's) or a path -> the local
    .safetensors file."""
    if init.startswith(MODEL_URI_SCHEMES):
        try:
            return resolve_model_uri(init, tracker)
        except ValueError as err:
            raise ConfigError(f"config key 'train.init' = {init!r}: {err}") from None
    path = Path(resolve_bundled(init))
    if not path.is_file():
        raise ConfigError(f"config key 'train.init' = {init!r}: no such model file")
    return path


def check_init(model_cfg: Mapping, init: str, tracker: Tracker | None = None) -> Path:
    """The model file named by ``init`` (a model URI: in ``tracker``'s store), after checking that its
    network config equals ``model_cfg`` (but for the input size): a ConfigError naming ``train.init``
    otherwise."""
    path = init_file(init, tracker)
    try:
        saved = weights.read_metadata(path)["model"]
    except (ValueError, OSError, SafetensorError) as err:
        raise ConfigError(f"config key 'train.init' = {init!r}: {path} is no facedet model file ({err})") from None
    here = OmegaConf.to_container(model_cfg, resolve=True) if OmegaConf.is_config(model_cfg) else dict(model_cfg)
    saved, here = {**_LANDMARK_KEYS, **saved}, {**_LANDMARK_KEYS, **here}
    free = _FREE_KEYS if saved.get("landmarks") else _FREE_KEYS | set(_LANDMARK_KEYS)
    differ = sorted(key for key in (set(saved) | set(here)) - free if _plain(saved.get(key)) != _plain(here.get(key)))
    if differ:
        detail = ", ".join(
            f"model.{k} = {_plain(here.get(k))!r} here, {_plain(saved.get(k))!r} in the file" for k in differ
        )
        raise ConfigError(
            f"config key 'train.init' = {init!r}: {path} is another network ({detail}); "
            "choose the matching model config or train.init=null"
        )
    has_landmarks, wants_landmarks = bool(saved.get("landmarks", False)), bool(here.get("landmarks", False))
    if has_landmarks and not wants_landmarks:
        raise ConfigError(
            f"config key 'train.init' = {init!r}: {path} predicts landmarks and model.landmarks is false here; "
            "set model.landmarks=true"
        )
    return path


def load_initial_weights(net: nn.Module, model_cfg: Mapping, init: str, tracker: Tracker | None = None) -> Path:
    """Copy the weights of the model file named by ``init`` into ``net`` (checked by [`check_init`][];
    a box-only file starts a landmark network, whose landmark branch keeps its initial weights);
    returns the file."""
    path = check_init(model_cfg, init, tracker)
    wants_landmarks = bool(model_cfg.get("landmarks", False))
    has_landmarks = bool(weights.read_metadata(path)["model"].get("landmarks", False))
    missing, _ = net.load_state_dict(load_file(str(path)), strict=has_landmarks == wants_landmarks)
    if any(not key.startswith("predict_landmarks.") for key in missing):
        raise ConfigError(f"config key 'train.init' = {init!r}: {path} lacks {missing[0]}")
    return path


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
