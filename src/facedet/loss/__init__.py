"""Losses, one module each; built by name from ``cfg.loss``."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from facedet.loss.dense import DenseLoss
from facedet.loss.single_face import SingleFaceLoss

# By name like the networks (facedet.model.NETWORKS), so that model and loss are chosen the same way.
LOSSES: dict[str, type[nn.Module]] = {"single_face": SingleFaceLoss, "dense": DenseLoss}


def build_loss(loss_cfg: Mapping) -> nn.Module:
    options = dict(loss_cfg)
    name = options.pop("name", None)
    if name not in LOSSES:
        raise ValueError(f"config key 'loss.name' = {name!r}: expected one of {sorted(LOSSES)}")
    return LOSSES[name](**options)
