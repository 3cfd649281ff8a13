"""Face-detection networks, built by name from ``cfg.model`` (and from a weights file's metadata).

Every network has ``input_size`` (training input), ``detect_size`` (the longest side pictures are
scanned at when validating and detecting) and ``resize`` (see `facedet.model.inputs`), ``forward(images)``
returning its raw outputs (what its loss takes), and ``decode(outputs)`` returning [B, N, 5]
candidates (x1, y1, x2, y2 normalised to the input, score), exportable to ONNX.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from facedet.model.dense import DenseNet
from facedet.model.postprocess import select
from facedet.model.single_face import SingleFaceNet

# A registry by name, not Hydra's `_target_`: a model file's metadata names its network, and loading one
# must never import or call whatever a (possibly foreign) file names.
NETWORKS: dict[str, type[nn.Module]] = {"single_face": SingleFaceNet, "dense": DenseNet}


def build_net(model_cfg: Mapping) -> nn.Module:
    """The network named by ``model_cfg["name"]``, its other keys as constructor arguments."""
    options = dict(model_cfg)
    name = options.pop("name", None)
    if name not in NETWORKS:
        raise ValueError(f"config key 'model.name' = {name!r}: expected one of {sorted(NETWORKS)}")
    if "stages" in options:
        options["stages"] = tuple(options["stages"])
    return NETWORKS[name](**options)


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor, threshold: float = 0.0, nms_iou: float = 0.4) -> list[np.ndarray]:
    """Per image the kept faces [K, 5] (x1, y1, x2, y2 normalised to the input, score), best first."""
    decoded = net.decode(net(images)).cpu().numpy()
    return [select(rows, threshold, nms_iou) for rows in decoded]
