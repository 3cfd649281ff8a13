"""Use a trained model: faces in images, as boxes in pixels of the original image with scores.

[`FaceDetector`][] runs a model file with PyTorch (``.safetensors``) or ONNX Runtime (``.onnx``,
see [`facedet.inference.onnx`][]); both go through the same steps, so they give the same faces:
``prepare`` (resize as the network was trained) -> network -> ``decode`` -> ``select`` (threshold
and NMS) -> ``Placement.to_picture`` (back to pixels of the picture).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from facedet.coco import NUM_KEYPOINTS, Detection
from facedet.images import read_rgb
from facedet.inference import DEFAULT_MAX_SIZE
from facedet.inference.backends import OnnxBackend, TorchBackend, exported_sibling, onnx_of_fresh_export
from facedet.model import weights
from facedet.model.inputs import prepare
from facedet.model.postprocess import select


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


def resolve_bundled(path: Path | str) -> Path | str:
    """``bundled`` (the name commands take for the model shipped with facedet) -> its file; any other
    path or model URI as given."""
    return BUNDLED_WEIGHTS if str(path) == "bundled" else path


DEFAULT_THRESHOLD, DEFAULT_NMS_IOU = 0.5, 0.4
# A picture's larger scans keep only faces under this many pixels at its first scan: the first finds the
# larger ones, and at a higher resolution parts of a big face (an eye, a mouth) can pass for small faces.
SMALL_FACE = 64
BACKENDS = ("torch", "onnx")
MODEL_URI_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")


def _check_max_size(max_size: int | None) -> int | None:
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 32):
        raise ValueError(f"max size {max_size!r}: expected a number of pixels >= 32, or None (one scan)")
    return max_size


def _check_threshold(threshold: float) -> float:
    if not 0 <= threshold <= 1:  # also refuses NaN
        raise ValueError(f"threshold {threshold:g}: expected a number in [0, 1] (a face score)")
    return threshold


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
        max_size: int | None = DEFAULT_MAX_SIZE,
    ) -> None:
        self.backend = TorchBackend(model) if isinstance(model, torch.nn.Module) else model
        _check_threshold(threshold)
        self.threshold, self.nms_iou, self.batch_size = float(threshold), float(nms_iou), int(batch_size)
        self.max_size = _check_max_size(max_size)
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
            f"pictures scanned at {self.backend.detect_size} px{self._pyramid_text()}; {info['backend']}"
        )

    def with_max_size(self, max_size: int | None) -> FaceDetector:
        """This detector (same model, threshold and engine) with another ``max_size``; None: one scan."""
        other = copy.copy(self)
        other.max_size = _check_max_size(max_size)
        return other

    def _pyramid_text(self) -> str:
        if len(self.scan_sizes(self.max_size or 0, 0)) == 1:  # not even a picture of max_size gets more
            return ""
        return f", larger ones also at 2x, 4x ... up to their own size or {self.max_size} px"

    def scan_sizes(self, width: int, height: int) -> list[int]:
        """The longest sides a ``width`` x ``height`` picture is scanned at: the model's scan size
        (``detect_size``), and for a larger picture (letterbox models) also twice, four times ... that
        size below min(its longest side, ``max_size``) and then that size itself, so that faces too
        small at the first scan are seen at a size the network knows. The larger scans keep the faces
        under ``SMALL_FACE`` pixels at the first scan; all are merged by NMS."""
        sizes = [self.backend.detect_size]
        if self.backend.resize != "letterbox" or self.max_size is None:
            return sizes
        top = min(max(width, height), self.max_size)
        while sizes[-1] * 2 < top:
            sizes.append(sizes[-1] * 2)
        if top > sizes[-1]:
            sizes.append(top)
        return sizes

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
        max_size: int | None = DEFAULT_MAX_SIZE,
    ) -> FaceDetector:
        """Load a model file: ``.safetensors`` (backend ``torch``, or ``onnx`` through its sibling
        ``.onnx`` / an export on the fly) or ``.onnx`` (backend ``onnx``). Default backend: ``onnx``
        for an ``.onnx`` file and for a ``.safetensors`` file with its exported ``.onnx`` beside it
        (the bundled model, the pipeline's model after `dvc repro`; ONNX Runtime is several times
        faster on a CPU and gives the same faces), else ``torch``.

        ``threshold`` defaults to the model's (its metadata key "threshold"), else 0.5. ``threads``
        sets the intra-op threads (for PyTorch: process-wide). ``size``: the longest side pictures are
        scanned at (default: the model's ``detect_size``; larger finds smaller faces, slower);
        ``max_size``: the longest side larger pictures are scanned at as well (see [`scan_sizes`][];
        None: one scan). No path:
        [`default_weights`][]; ``"bundled"``: the model shipped with facedet (as ``train.init``).
        """
        chosen = "default" if path is None else "given"
        path = default_weights() if path is None else resolve_bundled(path)
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
            runner = OnnxBackend(onnx_file, threads) if onnx_file else onnx_of_fresh_export(path, threads)
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
        return cls(runner, threshold, nms_iou, batch_size, model_info=info, max_size=max_size)

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
        for chunk in self._chunks(images):
            scans = [
                (index, size, prepare(image, size, self.backend.resize, square=False))
                for index, (image, sizes) in enumerate(chunk)
                for size in sizes
            ]
            decoded = self._decode([tensor for _, _, (tensor, _) in scans])
            found: list[list[np.ndarray]] = [[] for _ in chunk]
            for (index, size, (_, placement)), rows in zip(scans, decoded):
                rows = select(rows, threshold, self.nms_iou).astype(np.float64)
                rows[:, :4] = placement.to_picture(rows[:, :4])
                if size != self.backend.detect_size:  # a larger scan: only the faces too small for the first
                    first = self.backend.detect_size / max(placement.width, placement.height)
                    sides = np.maximum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1]) * first
                    rows = rows[sides < SMALL_FACE]
                if rows.shape[1] >= 5 + 2 * NUM_KEYPOINTS:
                    points = rows[:, 5 : 5 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2)
                    rows[:, 5 : 5 + 2 * NUM_KEYPOINTS] = placement.points_to_picture(points).reshape(
                        len(rows), 2 * NUM_KEYPOINTS
                    )
                found[index].append(rows)
            results.extend(self._faces(rows) for rows in found)
        return results

    def _chunks(self, images: list[np.ndarray]) -> Iterator[list[tuple[np.ndarray, list[int]]]]:
        """Consecutive pictures with their scan sizes, as many as hold the pixels of ``batch_size``
        scans at the scan size (at least one): a big picture's larger scans make smaller batches."""
        budget, chunk, used = self.batch_size * self.backend.detect_size**2, [], 0
        for image in images:
            sizes = self.scan_sizes(image.shape[1], image.shape[0])
            cost = sum(size * size for size in sizes)
            if chunk and used + cost > budget:
                yield chunk
                chunk, used = [], 0
            chunk.append((image, sizes))
            used += cost
        if chunk:
            yield chunk

    def _faces(self, scans: list[np.ndarray]) -> list[Detection]:
        """One picture's faces from its scans' rows (in picture pixels, each scan already through NMS)."""
        rows = np.concatenate(scans)
        if len(scans) > 1:  # select works in float32: it picks the rows, which keep their float64 pixels
            kept = select(np.column_stack([rows[:, :5], np.arange(len(rows))]), 0.0, self.nms_iou)
            rows = rows[kept[:, 5].astype(np.int64)]
        has_points = rows.shape[1] >= 5 + 2 * NUM_KEYPOINTS
        faces = []
        for row in rows:
            box = tuple(row[:4].round(2).tolist())
            points = None
            if has_points:
                pixels = row[5 : 5 + 2 * NUM_KEYPOINTS].reshape(NUM_KEYPOINTS, 2).round(2)
                points = tuple(map(tuple, pixels.tolist()))
            faces.append(Detection(box, round(float(row[4]), 4), points))
        return faces

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
