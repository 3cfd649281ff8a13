"""The engines a [`FaceDetector`][facedet.inference.detector.FaceDetector] runs a model with: a batch
[B, 3, H, W] float in [0, 1] -> decoded candidates [B, N, 5 or 15] (numpy). PyTorch for a network,
ONNX Runtime for an exported ``.onnx`` file (the weights' own export beside them, or a fresh one)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from facedet.model import weights
from facedet.model.inputs import RESIZE_MODES

log = logging.getLogger(__name__)


class TorchBackend:
    name = "torch"

    def __init__(self, net: torch.nn.Module, threads: int | None = None) -> None:
        self.net = net.eval()
        self.detect_size, self.resize = int(net.detect_size), str(net.resize)
        self.landmarks = bool(getattr(net, "landmarks", False))
        if threads:
            torch.set_num_threads(threads)  # process-wide: PyTorch has no per-model setting

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():  # thread-local; eval-mode modules keep no state between calls
            return self.net.decode(self.net(batch)).float().cpu().numpy()


def _input_side(metadata: dict, key: str, path: Path) -> int:
    """``metadata[key]``, a side in pixels the ONNX backend resizes to; else ModelFileError naming it."""
    size = metadata.get(key)
    if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= weights.MAX_INPUT_SIZE:
        raise weights.ModelFileError(
            f"{path}: metadata '{key}' = {size!r:.40}: expected an integer in [32, {weights.MAX_INPUT_SIZE}]"
        )
    return size


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        from facedet.inference.onnx import INPUT_NAME, METADATA_KEY, OUTPUT_NAME

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default (all cores)
        options.inter_op_num_threads = 1
        # Idle workers that spin take the cores from the resizing and NMS around each run: on 2 CPUs
        # a 640x480 frame took 7.7 ms with spinning and 3.5 ms without (experiments/bench_inference.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise weights.ModelFileError(f"{path}: not a usable ONNX file ({_first_line(err)})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in props:
            raise weights.ModelFileError(
                f"{path}: not a facedet ONNX file (no '{METADATA_KEY}' metadata; make it with `facedet export`)"
            )
        try:
            self.metadata = json.loads(props[METADATA_KEY])
        except (ValueError, RecursionError):
            raise weights.ModelFileError(f"{path}: its '{METADATA_KEY}' metadata is not valid JSON") from None
        self.metadata = weights.check_metadata(self.metadata, str(path))
        size = _input_side(self.metadata, "input_size", path)
        # Files exported before detect_size existed are scanned at their input_size.
        detect_size = _input_side({"detect_size": size, **self.metadata}, "detect_size", path)
        resize = self.metadata.get("resize")
        if resize not in RESIZE_MODES:
            raise weights.ModelFileError(f"{path}: metadata 'resize' = {resize!r:.40}: expected one of {RESIZE_MODES}")
        inputs, outputs = [i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or OUTPUT_NAME not in outputs:
            raise weights.ModelFileError(
                f"{path}: the graph's inputs {inputs} and outputs {outputs} are not "
                f"facedet's ([{INPUT_NAME!r}] -> {OUTPUT_NAME!r})"
            )
        self.detect_size, self.resize = detect_size, resize
        self.landmarks = bool(self.metadata["model"].get("landmarks", False))
        self._input, self._output = INPUT_NAME, OUTPUT_NAME

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        # InferenceSession.run is thread-safe.
        return self.session.run([self._output], {self._input: batch.numpy()})[0]


def _first_line(err: Exception) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    text = "".join(c if c.isprintable() else "?" for c in lines[0])
    return text if len(text) <= 120 else text[:117] + "..."


def exported_sibling(weights_path: Path) -> Path | None:
    """The .onnx beside a .safetensors file when `facedet export` made it from these very weights."""
    sibling = weights_path.with_suffix(".onnx")
    if weights_path.suffix.lower() != ".safetensors" or not sibling.is_file():
        return None
    import onnx

    from facedet.inference.onnx import METADATA_KEY, file_sha256

    try:
        props = {p.key: p.value for p in onnx.load(str(sibling), load_external_data=False).metadata_props}
        source = json.loads(props.get(METADATA_KEY, "{}")).get("source_sha256")
    except Exception:  # noqa: BLE001 - an unreadable sibling is not these weights' export
        source = None
    if source == file_sha256(weights_path):
        return sibling
    log.warning("%s was not exported from %s; not using it", sibling, weights_path)
    return None


def onnx_of_fresh_export(weights_path: Path, threads: int | None) -> OnnxBackend:
    """ONNX Runtime on a fresh export of a .safetensors file. The export lives in a temporary folder
    only until ONNX Runtime has read it, so that loading leaves nothing behind."""
    from facedet.inference.onnx import export_onnx

    with tempfile.TemporaryDirectory(prefix="facedet-onnx-") as folder:
        out = Path(folder) / weights_path.with_suffix(".onnx").name
        diff = export_onnx(weights_path, out)
        log.info("exported %s to ONNX for this session (max abs diff vs PyTorch %.2g)", weights_path, diff)
        return OnnxBackend(out, threads)
