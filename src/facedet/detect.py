"""Use a trained model: faces in images, as boxes in pixels of the original image with scores.

:class:`FaceDetector` runs a model file with PyTorch (``.safetensors``) or ONNX Runtime (``.onnx``,
see :mod:`facedet.export`); both go through the same steps, so they give the same faces:
``prepare`` (resize as the network was trained) -> network -> ``decode`` -> ``select`` (threshold
and NMS) -> ``Placement.to_picture`` (back to pixels of the picture).

:func:`run_detect` is ``facedet detect``: images, folders, globs, videos and cameras to JSON,
CSV, annotated pictures / video and a live window.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from facedet.coco import Detection
from facedet.images import ImageError, list_images, read_rgb
from facedet.model import weights
from facedet.model.inputs import prepare
from facedet.model.postprocess import select

log = logging.getLogger(__name__)


def default_weights(backend: str | None = None) -> Path:
    """The pipeline's last model (run from the project folder), else the model bundled with the
    package (see facedet/bundled/MODEL_CARD.md)."""
    onnx = PIPELINE_WEIGHTS.with_suffix(".onnx")
    if backend == "onnx" and onnx.is_file():
        return onnx
    return PIPELINE_WEIGHTS if PIPELINE_WEIGHTS.is_file() else BUNDLED_WEIGHTS

PIPELINE_WEIGHTS = Path("results/train/model.safetensors")
BUNDLED_WEIGHTS = Path(__file__).parent / "bundled" / "default.safetensors"
DEFAULT_THRESHOLD, DEFAULT_NMS_IOU = 0.5, 0.4
BACKENDS = ("torch", "onnx")
MODEL_URI_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


# --- backends: batch [B, 3, H, W] float in [0, 1] -> decoded candidates [B, N, 5] (numpy) ------------

class TorchBackend:
    name = "torch"

    def __init__(self, net: torch.nn.Module, threads: int | None = None) -> None:
        self.net = net.eval()
        self.input_size, self.resize = int(net.input_size), str(net.resize)
        if threads:
            torch.set_num_threads(threads)  # process-wide: PyTorch has no per-model setting

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():  # thread-local; eval-mode modules keep no state between calls
            return self.net.decode(self.net(batch)).float().cpu().numpy()


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        from facedet.export import INPUT_NAME, METADATA_KEY, OUTPUT_NAME

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default (all cores)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        props = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in props:
            raise ValueError(f"{path}: not a facedet ONNX file (no '{METADATA_KEY}' metadata; "
                             f"make it with `facedet export`)")
        self.metadata = json.loads(props[METADATA_KEY])
        self.input_size, self.resize = int(self.metadata["input_size"]), str(self.metadata["resize"])
        self._input, self._output = INPUT_NAME, OUTPUT_NAME

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        # InferenceSession.run is thread-safe.
        return self.session.run([self._output], {self._input: batch.numpy()})[0]


def _onnx_for(weights_path: Path) -> Path:
    """The ONNX file of a .safetensors file: its sibling .onnx when made from these very weights,
    else a fresh export in a temporary folder."""
    from facedet.export import METADATA_KEY, export_onnx, file_sha256

    sibling = weights_path.with_suffix(".onnx")
    if sibling.is_file():
        import onnx

        props = {p.key: p.value for p in onnx.load(str(sibling), load_external_data=False).metadata_props}
        if json.loads(props.get(METADATA_KEY, "{}")).get("source_sha256") == file_sha256(weights_path):
            return sibling
        log.warning("%s was not exported from %s; exporting again", sibling, weights_path)
    out = Path(tempfile.mkdtemp(prefix="facedet-onnx-")) / sibling.name
    diff = export_onnx(weights_path, out)
    log.info("exported %s to %s (max abs diff vs PyTorch %.2g)", weights_path, out, diff)
    return out


class FaceDetector:
    """A loaded model; call it on an RGB image (HxWx3 uint8) or use :meth:`detect_batch`.

    Faces come back as :class:`~facedet.coco.Detection` in pixels of the given picture, best first.
    Calls keep no state, so one detector can serve several threads at once.
    """

    def __init__(self, model: torch.nn.Module | TorchBackend | OnnxBackend, threshold: float = DEFAULT_THRESHOLD,
                 nms_iou: float = DEFAULT_NMS_IOU, batch_size: int = 16) -> None:
        self.backend = TorchBackend(model) if isinstance(model, torch.nn.Module) else model
        self.threshold, self.nms_iou, self.batch_size = float(threshold), float(nms_iou), int(batch_size)

    @property
    def net(self) -> torch.nn.Module:
        """The PyTorch network (torch backend only)."""
        if not isinstance(self.backend, TorchBackend):
            raise AttributeError(f"the {self.backend.name} backend has no PyTorch network")
        return self.backend.net

    @classmethod
    def load(cls, path: Path | str | None = None, *, backend: str | None = None, threshold: float | None = None,
             nms_iou: float = DEFAULT_NMS_IOU, threads: int | None = None, batch_size: int = 16) -> FaceDetector:
        """Load a model file: ``.safetensors`` (backend ``torch``, or ``onnx`` through its sibling
        ``.onnx`` / an export on the fly) or ``.onnx`` (backend ``onnx``, the default for it).

        ``threshold`` defaults to the model's (its metadata key "threshold"), else 0.5. ``threads``
        sets the intra-op threads (for PyTorch: process-wide). No path: :func:`default_weights`.
        """
        path = default_weights(backend) if path is None else path
        if str(path).startswith(MODEL_URI_SCHEMES):
            from facedet.tracking import resolve_model_uri  # MLflow is heavy: only for registry URIs

            path = resolve_model_uri(str(path))
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        is_onnx = path.suffix.lower() == ".onnx"
        backend = backend or ("onnx" if is_onnx else "torch")
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: expected one of {BACKENDS}")
        if backend == "torch":
            if is_onnx:
                raise ValueError(f"{path}: an ONNX file runs with the onnx backend only; "
                                 f"give the .safetensors file for the torch backend")
            net, metadata = weights.load(path)
            runner: TorchBackend | OnnxBackend = TorchBackend(net, threads)
        else:
            runner = OnnxBackend(path if is_onnx else _onnx_for(path), threads)
            metadata = runner.metadata
        if threshold is None:
            threshold = metadata.get("threshold", DEFAULT_THRESHOLD)
        return cls(runner, threshold, nms_iou, batch_size)

    def __call__(self, image: np.ndarray, threshold: float | None = None) -> list[Detection]:
        return self.detect_batch([image], threshold)[0]

    def detect_batch(self, images: list[np.ndarray], threshold: float | None = None) -> list[list[Detection]]:
        """Faces scoring at least ``threshold`` (default: the detector's), best first, per image."""
        threshold = self.threshold if threshold is None else threshold
        results: list[list[Detection]] = []
        for start in range(0, len(images), self.batch_size):
            prepared = [prepare(image, self.backend.input_size, self.backend.resize)
                        for image in images[start:start + self.batch_size]]
            decoded = self._decode([tensor for tensor, _ in prepared])
            for (_, placement), rows in zip(prepared, decoded):
                rows = select(rows, threshold, self.nms_iou)
                boxes = placement.to_picture(rows[:, :4]).round(2)
                results.append([Detection(tuple(box.tolist()), round(float(score), 4))
                                for box, score in zip(boxes, rows[:, 4])])
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


# --- sources and results ---------------------------------------------------------------------------

@dataclass
class Source:
    """What ``facedet detect`` reads: ``kind`` is image, folder, glob, video or camera."""

    kind: str
    spec: str
    files: list[Path] = field(default_factory=list)
    root: Path | None = None  # names of folder / glob files are relative to it

    def name(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if self.root is not None else path.name


def resolve_source(spec: str | Path) -> Source:
    text = str(spec)
    path = Path(text)
    if text.isdigit() and not path.exists():
        return Source("camera", text)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise FileNotFoundError(f"{path}: no image found")
        return Source("folder", text, files, path)
    if path.is_file():
        return Source("video" if path.suffix.lower() in VIDEO_EXTENSIONS else "image", text, [path])
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise FileNotFoundError(f"{text}: no file matches")
        videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
        if videos:
            raise FileNotFoundError(f"{text}: matches videos ({videos[0]}, ...); give videos one at a time")
        parts = Path(text).parts
        static = next(i for i, part in enumerate(parts) if glob.has_magic(part))
        return Source("glob", text, files, Path(*parts[:static]) if static else Path("."))
    raise FileNotFoundError(f"{text}: no such file, folder, glob match or camera index")


class Results:
    """The detections of one run, in the stable JSON contract and as CSV rows."""

    CSV_HEADER = ("file", "frame", "x1", "y1", "x2", "y2", "score")

    def __init__(self) -> None:
        self.data: dict = {"images": [], "errors": []}
        self.rows: list[tuple] = []

    def add(self, file: str, width: int, height: int, faces: list[Detection], frame: int | None = None) -> None:
        """One picture (or a video frame: ``file`` is the video's name, the entry "<file>#<frame>")."""
        self.data["images"].append({"file": file if frame is None else f"{file}#{frame}", "width": int(width),
                                    "height": int(height),
                                    "faces": [{"box": [round(float(v), 2) for v in f.box],
                                               "score": round(float(f.score), 4)} for f in faces]})
        self.rows += [(file, "" if frame is None else frame, *(round(float(v), 2) for v in f.box),
                       round(float(f.score), 4)) for f in faces]

    def error(self, file: str, problem: str) -> None:
        self.data["errors"].append({"file": file, "problem": problem})

    @property
    def faces(self) -> int:
        return sum(len(image["faces"]) for image in self.data["images"])

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.data, indent=1) + "\n")

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.CSV_HEADER)
            writer.writerows(self.rows)


def _detect_images(detector: FaceDetector, source: Source, results: Results, out_dir: Path | None,
                   display: object | None) -> None:
    import cv2
    from rich.console import Console
    from rich.progress import track

    from facedet.video import annotate

    files = source.files
    for path in track(files, description="detect", transient=True, disable=len(files) < 10,
                      console=Console(stderr=True)):
        name = source.name(path)
        try:
            image = read_rgb(path)
        except ImageError as err:
            results.error(name, str(err))
            continue
        faces = detector(image)
        results.add(name, image.shape[1], image.shape[0], faces)
        if out_dir is not None or display is not None:
            picture = annotate(image, faces)
            if out_dir is not None:
                target = out_dir / name
                if target.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
                    target = target.with_suffix(".png")
                target.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(target), picture):
                    results.error(name, f"cannot write {target}")
            if display is not None and not display.show(picture, wait_ms=0):  # type: ignore[attr-defined]
                break


def run_detect(spec: str | Path, detector: FaceDetector, json_out: Path | None = None, csv_out: Path | None = None,
               out: Path | None = None, smooth: bool = True, show: bool = False,
               max_frames: int | None = None) -> Results:
    """Detect faces in an image, a folder, a glob, a video file or a camera; write what is asked.

    Video and camera frames are smoothed over time (:class:`facedet.video.BoxSmoother`) unless
    ``smooth`` is false. Ctrl-C (or q in the window) stops early, keeping what was done so far.
    """
    from facedet.video import Display, detect_video

    source = resolve_source(spec)
    display = Display(f"facedet: {source.spec}") if show else None  # fails early without a GUI
    results = Results()
    try:
        if source.kind in ("video", "camera"):
            detect_video(detector, source.spec, results, out=out, smooth=smooth, display=display,
                         max_frames=max_frames)
        else:
            _detect_images(detector, source, results, out, display)
    except KeyboardInterrupt:
        log.warning("interrupted: writing what was detected so far")
    finally:
        if display is not None:
            display.close()
        if json_out is not None:
            results.write_json(json_out)
        if csv_out is not None:
            results.write_csv(csv_out)
    return results
