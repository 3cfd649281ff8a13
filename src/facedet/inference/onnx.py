"""Export a model file to ONNX: ``images [B, 3, H, W] -> faces [B, N, 5]`` (decoded candidates:
x1, y1, x2, y2 normalised, score; ``[B, N, 15]`` with the five landmarks x1, y1, ..., x5, y5
normalised after them for a model with landmarks).

The graph is ``net.decode(net(images))``: the same candidates as [`facedet.model.predict`][]
before thresholding and NMS, which stay in Python (`facedet.model.postprocess.select`) so
every backend shares them. The facedet metadata (network config, threshold, ``input_size``,
``resize`` and the SHA-256 of the weights file it came from) is stored in the ONNX
``metadata_props`` under the key ``facedet``, so an ``.onnx`` file is self-describing.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facedet.images import file_sha256
from facedet.model import weights

INPUT_NAME, OUTPUT_NAME = "images", "faces"
METADATA_KEY = weights.METADATA_KEY


class Decoded(nn.Module):
    """``net`` with ``decode`` folded in: images -> [B, N, 5 or 15] candidates, normalised to the input."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.decode(self.net(images))


def onnx_metadata(net: nn.Module, metadata: dict, source: Path) -> dict:
    """What an ONNX backend needs besides the graph: the file's metadata plus how inputs are made."""
    return {
        **metadata,
        "input_size": int(net.input_size),
        "detect_size": int(net.detect_size),
        "resize": str(net.resize),
        "source_sha256": file_sha256(source),
    }


def _check_shapes(net: nn.Module) -> list[tuple[int, int, int]]:
    """(batch, height, width) inputs the exported graph is checked on: another batch size than the
    export's, and for letterbox networks (any input size) a non-square input too."""
    size = int(net.input_size)
    shapes = [(2, size, size)]
    if getattr(net, "resize", "stretch") == "letterbox":
        stride = int(getattr(net, "stride", 32))
        shapes.append((1, size, max(stride, (size * 3 // 4) // stride * stride)))
    return shapes


def export_onnx(weights_path: Path | str, out_path: Path | str, opset: int = 17) -> float:
    """Write the ONNX graph of the model file and return the largest absolute difference between
    ONNX Runtime and PyTorch on random inputs (other batch size, and other shapes where the
    network takes any input size)."""
    import onnx
    import onnxruntime as ort

    weights_path, out_path = Path(weights_path), Path(out_path)
    net, metadata = weights.load(weights_path)
    model = Decoded(net).eval()  # eval on the wrapper: export restores the wrapper's mode afterwards
    size = int(net.input_size)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # "legacy TorchScript exporter"
        torch.onnx.export(
            model,
            (torch.rand(1, 3, size, size),),
            str(out_path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            do_constant_folding=True,
            dynamic_axes={
                INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                OUTPUT_NAME: {0: "batch", 1: "candidates"},
            },
        )

    graph = onnx.load(str(out_path))
    onnx.checker.check_model(graph)
    del graph.metadata_props[:]
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(onnx_metadata(net, metadata, weights_path))
    graph.producer_name = "facedet"
    onnx.save(graph, str(out_path))

    session = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch, height, width in _check_shapes(net):
        images = torch.rand(batch, 3, height, width, generator=generator)
        with torch.inference_mode():
            expected = model(images).numpy()
        try:
            got = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
        except Exception as err:  # onnxruntime raises its own exception types
            raise RuntimeError(
                f"{out_path}: the exported graph fails on input {list(images.shape)} "
                f"(shapes baked in while tracing?): {err}"
            ) from err
        if got.shape != expected.shape:
            raise RuntimeError(
                f"{out_path}: ONNX output {got.shape} != PyTorch {expected.shape} on input {list(images.shape)}"
            )
        worst = max(worst, float(np.abs(got - expected).max()) if got.size else 0.0)
    return worst
