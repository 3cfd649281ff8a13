"""Use a trained model: faces in images, as boxes in pixels of the original image with scores.

[`FaceDetector`][] runs a model file with PyTorch (``.safetensors``) or ONNX Runtime (``.onnx``,
see [`facedet.inference.onnx`][]); both go through the same steps, so they give the same faces:
``prepare`` (resize as the network was trained) -> network -> ``decode`` -> ``select`` (threshold
and NMS) -> ``Placement.to_picture`` (back to pixels of the picture).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from facedet.coco import NUM_KEYPOINTS, Detection
from facedet.images import read_rgb
from facedet.model import weights
from facedet.model.inputs import RESIZE_MODES, prepare
from facedet.model.postprocess import select

log = logging.getLogger(__name__)


def default_weights() -> Path:
    """The model of the workspace's pipeline run (results/train/model.safetensors, from the project
    folder), else the model bundled with the package (see facedet/bundled/MODEL_CARD.md). Not the
    registry's champion: the default follows what `dvc exp show` calls the workspace, and needs no
    MLflow store; ``models:/facedet@champion`` asks for the champion."""
    pipeline = pipeline_weights()
    return pipeline if pipeline is not None and pipeline.is_file() else BUNDLED_WEIGHTS


def pipeline_weights() -> Path | None:
    """The train stage's model file of the project at or above the current folder (``paths.train``
    of conf/paths/default.yaml), None outside a project."""
    from facedet.stages import stage_folder

    folder = stage_folder("train")
    return None if folder is None else folder / "model.safetensors"


BUNDLED_WEIGHTS = Path(__file__).parent.parent / "bundled" / "default.safetensors"
DEFAULT_THRESHOLD, DEFAULT_NMS_IOU = 0.5, 0.4
BACKENDS = ("torch", "onnx")
MODEL_URI_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")


# --- backends: batch [B, 3, H, W] float in [0, 1] -> decoded candidates [B, N, 5 or 15] (numpy) ------


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


def _check_threshold(threshold: float) -> float:
    if not 0 <= threshold <= 1:  # also refuses NaN
        raise ValueError(f"threshold {threshold:g}: expected a number in [0, 1] (a face score)")
    return threshold


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


def _onnx_of_fresh_export(weights_path: Path, threads: int | None) -> OnnxBackend:
    """ONNX Runtime on a fresh export of a .safetensors file. The export lives in a temporary folder
    only until ONNX Runtime has read it, so that loading leaves nothing behind."""
    from facedet.inference.onnx import export_onnx

    with tempfile.TemporaryDirectory(prefix="facedet-onnx-") as folder:
        out = Path(folder) / weights_path.with_suffix(".onnx").name
        diff = export_onnx(weights_path, out)
        log.info("exported %s to ONNX for this session (max abs diff vs PyTorch %.2g)", weights_path, diff)
        return OnnxBackend(out, threads)


class FaceDetector:
    """A loaded model; call it on an RGB image (HxWx3 uint8) or use [`detect_batch`][].

    Faces come back as [`Detection`][facedet.coco.Detection] in pixels of the given picture, best first,
    with ``landmarks`` (five (x, y), `facedet.coco.KEYPOINT_NAMES` order) when the model has a
    landmark branch, else None.
    Calls keep no state, so one detector can serve several threads at once.
    """

    def __init__(
        self,
        model: torch.nn.Module | TorchBackend | OnnxBackend,
        threshold: float = DEFAULT_THRESHOLD,
        nms_iou: float = DEFAULT_NMS_IOU,
        batch_size: int = 16,
        model_info: dict | None = None,
    ) -> None:
        self.backend = TorchBackend(model) if isinstance(model, torch.nn.Module) else model
        _check_threshold(threshold)
        self.threshold, self.nms_iou, self.batch_size = float(threshold), float(nms_iou), int(batch_size)
        # Which model this is: {file, uri, mlflow_run_id, threshold, threshold_source, backend}
        # (see load); what `facedet detect` prints and writes into its JSON.
        self.model_info = {"threshold": self.threshold, "backend": self.backend.name, **(model_info or {})}

    def describe(self) -> str:
        """One line: the model file (and registry URI), its MLflow run, the threshold and where it comes from,
        the scan size and the backend."""
        info = self.model_info
        where = info.get("file", "an in-memory network")
        if info.get("uri"):
            where = f"{info['uri']} ({where})"
        run = f"MLflow run {info['mlflow_run_id']}" if info.get("mlflow_run_id") else "no MLflow run"
        return (
            f"model {where}; {run}; threshold {info['threshold']:g} ({info.get('threshold_source', 'given')}); "
            f"pictures scanned at {self.backend.detect_size} px; {info['backend']}"
        )

    @property
    def has_landmarks(self) -> bool:
        """Whether the model predicts five landmarks per face."""
        return self.backend.landmarks

    def align(self, image: np.ndarray, size: int = 112, threshold: float | None = None) -> list[np.ndarray]:
        """Each face found in the RGB ``image``, warped onto ArcFace's five-point template: ``size`` x
        ``size`` RGB crops, best face first (see [`facedet.inference.align`][]). ValueError for a
        model without landmarks."""
        from facedet.inference.align import align_faces

        if not self.has_landmarks:
            raise ValueError(f"{self.model_info.get('file', 'this model')}: the model predicts no landmarks")
        return align_faces(image, self(image, threshold), size)

    @property
    def net(self) -> torch.nn.Module:
        """The PyTorch network (torch backend only)."""
        if not isinstance(self.backend, TorchBackend):
            raise AttributeError(f"the {self.backend.name} backend has no PyTorch network")
        return self.backend.net

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        *,
        backend: str | None = None,
        threshold: float | None = None,
        nms_iou: float = DEFAULT_NMS_IOU,
        threads: int | None = None,
        batch_size: int = 16,
        size: int | None = None,
    ) -> FaceDetector:
        """Load a model file: ``.safetensors`` (backend ``torch``, or ``onnx`` through its sibling
        ``.onnx`` / an export on the fly) or ``.onnx`` (backend ``onnx``). Default backend: ``onnx``
        for an ``.onnx`` file and for a ``.safetensors`` file with its exported ``.onnx`` beside it
        (the bundled model, the pipeline's model after `dvc repro`; ONNX Runtime is several times
        faster on a CPU and gives the same faces), else ``torch``.

        ``threshold`` defaults to the model's (its metadata key "threshold"), else 0.5. ``threads``
        sets the intra-op threads (for PyTorch: process-wide). ``size``: the longest side pictures are
        scanned at (default: the model's ``detect_size``; larger finds smaller faces, slower). No path:
        [`default_weights`][]; ``"bundled"``: the model shipped with facedet (as ``train.init``).
        """
        chosen = "default" if path is None else "given"
        path = default_weights() if path is None else BUNDLED_WEIGHTS if str(path) == "bundled" else path
        uri = None
        if str(path).startswith(MODEL_URI_SCHEMES):
            from facedet.tracking import resolve_model_uri  # MLflow is heavy: only for registry URIs

            uri, path = str(path), resolve_model_uri(str(path))
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        is_onnx = path.suffix.lower() == ".onnx"
        # Checked once: it reads the .onnx and hashes the weights.
        sibling = None if is_onnx or backend == "torch" else exported_sibling(path)
        if backend is None:
            backend = "onnx" if is_onnx or sibling is not None else "torch"
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: expected one of {BACKENDS}")
        if backend == "torch":
            if is_onnx:
                raise ValueError(
                    f"{path}: an ONNX file runs with the onnx backend only; "
                    f"give the .safetensors file for the torch backend"
                )
            net, metadata = weights.load(path)
            runner: TorchBackend | OnnxBackend = TorchBackend(net, threads)
        else:
            onnx_file = path if is_onnx else sibling
            runner = OnnxBackend(onnx_file, threads) if onnx_file else _onnx_of_fresh_export(path, threads)
            metadata = runner.metadata
        if size is not None:
            if runner.resize == "letterbox" and (size < 32 or size % 32):
                raise ValueError(f"size {size}: expected a multiple of 32 (the network's largest stride)")
            runner.detect_size = int(size)
        source = "given"
        if threshold is None:
            source = "the model's" if "threshold" in metadata else "the default"
            threshold = metadata.get("threshold", DEFAULT_THRESHOLD)
        info = {
            "file": str(path),
            "uri": uri,
            "chosen": chosen,
            "mlflow_run_id": metadata.get("mlflow_run_id"),
            "threshold_source": source,
        }
        return cls(runner, threshold, nms_iou, batch_size, model_info=info)

    def __call__(self, image: np.ndarray | str | Path, threshold: float | None = None) -> list[Detection]:
        """The faces in one picture: an RGB array (height, width, 3) or an image file's path."""
        return self.detect_batch([image], threshold)[0]

    def detect_batch(
        self, images: list[np.ndarray | str | Path], threshold: float | None = None
    ) -> list[list[Detection]]:
        """Faces scoring at least ``threshold`` (default: the detector's), best first, per picture
        (RGB arrays or image file paths)."""
        threshold = self.threshold if threshold is None else _check_threshold(threshold)
        images = [image if isinstance(image, np.ndarray) else read_rgb(Path(image)) for image in images]
        results: list[list[Detection]] = []
        for start in range(0, len(images), self.batch_size):
            prepared = [
                prepare(image, self.backend.detect_size, self.backend.resize, square=False)
                for image in images[start : start + self.batch_size]
            ]
            decoded = self._decode([tensor for tensor, _ in prepared])
            for (_, placement), rows in zip(prepared, decoded):
                rows = select(rows, threshold, self.nms_iou)
                boxes = placement.to_picture(rows[:, :4]).round(2)
                points: list = [None] * len(rows)
                if rows.shape[1] >= 5 + 2 * NUM_KEYPOINTS:
                    pixels = placement.points_to_picture(
                        rows[:, 5 : 5 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2)
                    )
                    points = [tuple(map(tuple, face)) for face in pixels.round(2).tolist()]
                results.append(
                    [
                        Detection(tuple(box.tolist()), round(float(score), 4), marks)
                        for box, score, marks in zip(boxes, rows[:, 4], points)
                    ]
                )
        return results

    def _decode(self, tensors: list[torch.Tensor]) -> list[np.ndarray]:
        """Candidates per input; inputs of one shape run as one batch (letterbox inputs may differ)."""
        out: list[np.ndarray | None] = [None] * len(tensors)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, tensor in enumerate(tensors):
            by_shape.setdefault(tuple(tensor.shape), []).append(index)
        for indices in by_shape.values():
            decoded = self.backend(torch.stack([tensors[i] for i in indices]))
            for i, rows in zip(indices, decoded):
                out[i] = rows
        return out  # type: ignore[return-value]
