"""Model files: safetensors weights plus JSON metadata (network config, threshold, provenance).

Loading never unpickles anything: the network is rebuilt by name from the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from safetensors import safe_open
from torch import nn

from facedet.model import build_net

METADATA_KEY = "facedet"


def save(net: nn.Module, model_cfg: dict, path: Path, **info: object) -> None:
    """Write the weights and ``{"model": model_cfg, **info}`` into one .safetensors file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps({"model": dict(model_cfg), **info})})


def read_metadata(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path}: not a facedet model file (no '{METADATA_KEY}' metadata)")
    return json.loads(metadata[METADATA_KEY])


def load(path: Path) -> tuple[nn.Module, dict]:
    """The network in eval mode and the file's metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    metadata = read_metadata(path)
    net = build_net(metadata["model"])
    net.load_state_dict(load_file(str(path)))
    return net.eval(), metadata
