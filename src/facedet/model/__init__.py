"""Face-detection networks, built by name from ``cfg.model`` (and from a weights file's metadata)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from facedet.model.single_face import SingleFaceNet

NETWORKS: dict[str, type[nn.Module]] = {"single_face": SingleFaceNet}


def build_net(model_cfg: Mapping) -> nn.Module:
    """The network named by ``model_cfg["name"]``, its other keys as constructor arguments."""
    options = dict(model_cfg)
    name = options.pop("name", None)
    if name not in NETWORKS:
        raise ValueError(f"config key 'model.name' = {name!r}: expected one of {sorted(NETWORKS)}")
    if "stages" in options:
        options["stages"] = tuple(options["stages"])
    return NETWORKS[name](**options)
