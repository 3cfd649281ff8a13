"""``facedet bench``: our models against peer face detectors, on the same images, same thread count.

Per detector (our model files, OpenCV's Haar cascade always, YuNet and dlib's HOG detector when their
packages are installed -- see :mod:`facedet.apps.peers`):

- ``ap50`` / ``ap50_95``: COCO AP (:func:`facedet.evaluate.metrics.detection_metrics`) on a labelled
  set -- default the pipeline's test split (``results/labels/test.json``, images in
  ``results/collect/images``); every candidate a detector scores is ranked. ``precision`` /
  ``recall`` at the detector's own threshold (ours: the model's; peers: the library default).
- ``ms_per_frame``: median wall time of one call on one RGB frame resized to 640x480 (everything a
  user pays: colour conversion, resizing, network, NMS), after warm-up, over ``repeats`` calls, the
  detectors taking turns of 10 calls, with torch / OpenCV / ONNX Runtime / OpenMP limited to
  ``threads`` intra-op threads.
- ``params`` and ``size_bytes`` (the model file on disk); peers: known values or None with a note.
- ``fp_nonface``: boxes at the detector's threshold on real non-face pictures shipped in packages
  (scikit-image, scikit-learn). Most of them were also sample backgrounds (random crops, see
  :mod:`facedet.apps.sample`); ``fp_nonface_unseen`` counts only the ones the sample never uses.
- ``nme``: landmark NME (:func:`facedet.evaluate.metrics.landmark_metrics`: mean point error over
  sqrt(box area), at the detector's threshold) on the labelled set's faces that have landmarks, for the
  detectors that give landmarks (YuNet, our models with landmarks); ``nme_faces`` faces measured.
- ``faces_found``: faces matched (IoU >= 0.5, at the threshold) on the real portraits shipped in
  packages: skimage's astronaut and camera (profile), matplotlib's Grace Hopper. Their faces ARE
  pasted into the embedded sample, so this says "finds the real, whole picture", not "generalises".

Outputs ``bench.md`` (the table) and ``bench.json`` under ``out``, and an MLflow run (tag ``bench``)
in the project's experiment when a store is configured.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from facedet import coco
from facedet.apps import peers
from facedet.coco import Detection, Image
from facedet.evaluate.metrics import detection_metrics, landmark_metrics
from facedet.images import read_rgb
from facedet.stages import stage_folder

log = logging.getLogger(__name__)

FRAME = (640, 480)
DEFAULT_PEERS = tuple(peers.PEERS)


# --- the fixed real pictures --------------------------------------------------------------------

MAX_PHOTO_SIDE = 640  # the fixed photos are shrunk to this longest side, like a camera frame


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    scale = MAX_PHOTO_SIDE / max(image.shape[:2])
    if scale < 1:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return _rgb(image[0] if isinstance(image, tuple) else image)

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return _rgb(load_sample_image(name))

    return load


def _hopper() -> np.ndarray:
    import matplotlib.cbook

    return read_rgb(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


# Non-face photos: (name, loader, used as a sample background). Animals, a building, food, space,
# textures, documents; the last five never appear in the embedded sample.
NON_FACE: tuple[tuple[str, Callable[[], np.ndarray], bool], ...] = (
    ("sklearn china.jpg", _sklearn("china.jpg"), True),
    ("sklearn flower.jpg", _sklearn("flower.jpg"), True),
    *(
        (f"skimage {n}", _skimage(n), True)
        for n in (
            "chelsea",
            "coffee",
            "rocket",
            "hubble_deep_field",
            "brick",
            "coins",
            "grass",
            "gravel",
            "moon",
            "page",
            "clock",
            "text",
        )
    ),
    *(
        (f"skimage {n}", _skimage(n), False)
        for n in ("stereo_motorcycle", "immunohistochemistry", "retina", "horse", "logo")
    ),
)


@lru_cache(maxsize=1)
def _non_face() -> tuple[tuple[str, np.ndarray, bool], ...]:
    return tuple((name, load(), seen) for name, load, seen in NON_FACE)


@lru_cache(maxsize=1)
def _portraits() -> tuple[tuple[str, np.ndarray, Image], ...]:
    """Real face photos shipped in packages, with hand-drawn face boxes (see facedet.apps.sample)."""
    from facedet.apps.sample import ASTRONAUT_FACE, CAMERA_FACE, HOPPER_FACE

    out = []
    for name, load, box in (
        ("skimage astronaut", _skimage("astronaut"), ASTRONAUT_FACE),
        ("matplotlib grace_hopper.jpg", _hopper, HOPPER_FACE),
        ("skimage camera (profile)", _skimage("camera"), CAMERA_FACE),
    ):
        image = load()
        out.append((name, image, Image(name, image.shape[1], image.shape[0], [box])))
    return tuple(out)


# --- the labelled set ---------------------------------------------------------------------------


def load_truth(images: Path | None = None, image_root: Path | None = None) -> tuple[list[Image], list[np.ndarray], str]:
    """The labelled set: a canonical COCO file (images under ``image_root``, default: beside it in
    ``images/``, beside it, or the pipeline's ``results/collect/images``) or a LabelMe folder (images
    without a JSON are negatives). Returns the ground truth, the RGB pictures and a description."""
    labels, collected = stage_folder("labels"), stage_folder("collect")
    if images is None and labels is None:
        raise FileNotFoundError("no --images given and no facedet project here (with its test split)")
    spec = Path(images) if images is not None else labels / "test.json"
    if spec.is_dir():
        from facedet.labels.labelme import import_folder
        from facedet.problems import ProblemReport

        truth = import_folder(spec, ProblemReport("bench"))
        root = spec
    elif spec.is_file():
        truth = coco.read(spec)
        candidates = (
            [image_root]
            if image_root
            else [
                spec.parent / "images",
                spec.parent,
                *([collected / "images"] if collected else []),
                spec.parent.parent / "collect" / "images",
            ]
        )
        root = next((c for c in candidates if truth and (Path(c) / truth[0].file_name).is_file()), candidates[0])
    else:
        raise FileNotFoundError(f"{spec}: no such COCO file or LabelMe folder (run the pipeline, or give --images)")
    if not truth:
        raise FileNotFoundError(f"{spec}: no images")
    pictures = [read_rgb(Path(root) / image.file_name) for image in truth]
    return truth, pictures, f"{spec} (images in {root})" if spec.is_file() else str(spec)


# --- detectors ----------------------------------------------------------------------------------


@dataclass
class Runner(peers.Peer):
    """One detector under test: ``detect`` returns every scored candidate (AP ranks them all);
    ``threshold`` is the score from which a box counts as a detection."""

    kind: str = "peer"  # "ours" or "peer"
    timed: Callable[[np.ndarray], object] | None = None  # what the timing loop calls; None: detect


def our_runner(path: Path, backend: str = "torch", threads: int | None = None) -> Runner:
    from facedet.inference.detector import FaceDetector
    from facedet.model import weights

    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnx

        from facedet.inference.onnx import METADATA_KEY

        graph = onnx.load(str(path), load_external_data=False)
        props = {p.key: p.value for p in graph.metadata_props}
        metadata = json.loads(props.get(METADATA_KEY, "{}"))
        params = sum(int(np.prod(t.dims)) for t in graph.graph.initializer)  # batch norm may be folded in
        backend = "onnx"
    else:
        net, metadata = weights.load(path)
        params = sum(p.numel() for p in net.parameters())
    detector = FaceDetector.load(path, backend=backend, threads=threads)
    model_file = getattr(detector.backend, "path", path)
    name = str((metadata.get("model") or {}).get("name", path.stem)) + (" (onnx)" if backend == "onnx" else "")
    return Runner(
        name,
        lambda rgb: detector(rgb, threshold=0.0),
        detector.threshold,
        str(path),
        params=params,
        params_note="counted",
        size_bytes=Path(model_file).stat().st_size,
        size_note=Path(model_file).suffix.lstrip("."),
        kind="ours",
        timed=detector,
    )  # timed at the model's threshold: fewer candidates through NMS than at 0


def peer_runner(name: str, threads: int | None = None) -> Runner:
    p = peers.load(name, threads)
    return Runner(
        p.name,
        p.detect,
        p.threshold,
        p.source,
        p.params,
        p.params_note,
        p.size_bytes,
        p.size_note,
        list(p.notes),
        kind="peer",
    )


# --- measuring ----------------------------------------------------------------------------------


TIMING_TURN = 10  # timed calls per detector before the next one's turn (see time_ms)


class Timing(NamedTuple):
    wall_ms: float  # median
    cpu_ms: float  # median process CPU time (all threads)
    turn_spread: float  # slowest turn's median / fastest turn's median (1: steady)


def time_ms(
    fns: list[Callable[[np.ndarray], object]],
    frame: np.ndarray,
    repeats: int = 30,
    warmup: int = 3,
    turn: int = TIMING_TURN,
) -> list[Timing]:
    """Per function, median wall and median process-CPU milliseconds of ``fn(frame)`` over ``repeats``
    calls after ``warmup`` calls, and how much its turns differed. The functions take turns of ``turn`` timed calls, so a burst of load
    from elsewhere on the machine slows all of them alike instead of whichever was being timed; each
    turn starts with one untimed call, which pays for the caches and the idle thread pools the previous
    function left behind. On a shared machine the CPU time (summed over threads) is the steadier number."""
    for fn in fns:
        for _ in range(warmup):
            fn(frame)
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    repeats = max(1, repeats)
    while fns and len(wall[0]) < repeats:
        calls = min(turn, repeats - len(wall[0]))
        for fn, fn_wall, fn_cpu in zip(fns, wall, cpu):
            fn(frame)
            for _ in range(calls):
                start, start_cpu = time.perf_counter(), time.process_time()
                fn(frame)
                fn_wall.append((time.perf_counter() - start) * 1000.0)
                fn_cpu.append((time.process_time() - start_cpu) * 1000.0)
    return [Timing(statistics.median(w), statistics.median(c), _turn_spread(w, turn)) for w, c in zip(wall, cpu)]


def _turn_spread(wall: list[float], turn: int) -> float:
    medians = [statistics.median(wall[i : i + turn]) for i in range(0, len(wall), turn)]
    return max(medians) / min(medians) if min(medians) > 0 else float("inf")


# Beyond these, the times say more about the machine than about the detector.
WAIT_RATIO = 1.5  # wall time per CPU time: the process waited for a CPU
TURN_SPREAD = 1.5  # slowest turn / fastest turn: the load changed while timing


def timing_problems(names: list[str], timings: list[Timing], load: float, cpus: int) -> list[str]:
    """What makes these times unreliable, in words: a busy machine (1-minute load average above the
    number of CPUs, read before timing), a detector that waited for the CPU (wall time well above its
    CPU time), turns that differed (load that came and went)."""
    problems = [f"the machine was busy (load average {load:.1f} on {cpus} CPUs)"] if load > cpus else []
    for name, t in zip(names, timings):
        if t.wall_ms > WAIT_RATIO * t.cpu_ms:
            problems.append(f"{name} waited for the CPU ({t.wall_ms:.1f} ms wall for {t.cpu_ms:.1f} ms of CPU time)")
        if t.turn_spread > TURN_SPREAD:
            problems.append(f"{name}'s turns differed up to {t.turn_spread:.1f}x")
    return problems


def _counted(detections: list[Detection], threshold: float) -> list[Detection]:
    return [d for d in detections if d.score >= threshold]


def _negative(image: Image) -> bool:
    """A labelled picture with no face and no ignore region: any box there is a false positive."""
    return not image.boxes and not image.ignore


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def measure(
    runner: Runner,
    truth: list[Image],
    pictures: list[np.ndarray],
    non_face: list[tuple[str, np.ndarray, bool]],
    portraits: list[tuple[str, np.ndarray, Image]],
) -> dict:
    """A runner's row, all but its timing (see :func:`time_ms`)."""
    predictions = [runner.detect(picture) for picture in pictures]
    metrics = detection_metrics(truth, predictions, runner.threshold)
    marks = landmark_metrics(truth, predictions, runner.threshold)
    on_negatives = sum(len(_counted(p, runner.threshold)) for t, p in zip(truth, predictions) if _negative(t))
    fp = {name: len(_counted(runner.detect(image), runner.threshold)) for name, image, _ in non_face}
    unseen = sum(fp[name] for name, _, seen in non_face if not seen)
    found = {}
    for name, image, face in portraits:
        m = detection_metrics([face], [_counted(runner.detect(image), runner.threshold)], runner.threshold)
        found[name] = {"found": int(m["tp"]), "false_positives": int(m["fp"])}
    return {
        "name": runner.name,
        "kind": runner.kind,
        "source": runner.source,
        "threshold": round(runner.threshold, 4),
        "ap50": _finite(metrics["ap50"]),
        "ap50_95": _finite(metrics["ap50_95"]),
        "precision": _finite(metrics["precision"]),
        "recall": _finite(metrics["recall"]),
        "fp": int(metrics["fp"]),
        "fp_on_negatives": on_negatives,
        "nme": _finite(marks.get("nme")),
        "nme_faces": int(marks.get("nme_faces", 0)),
        "params": runner.params,
        "params_note": runner.params_note,
        "size_bytes": runner.size_bytes,
        "size_note": runner.size_note,
        "fp_nonface": sum(fp.values()),
        "fp_nonface_unseen": unseen,
        "fp_per_photo": fp,
        "faces_found": sum(v["found"] for v in found.values()),
        "faces_total": len(portraits),
        "portraits": found,
        "notes": runner.notes,
    }


@dataclass
class BenchSettings:
    images: Path | None = None  # COCO file or LabelMe folder; None: the pipeline's test split
    image_root: Path | None = None
    weights: list[Path] = field(default_factory=list)  # empty: results/train/model.safetensors if present
    backends: tuple[str, ...] = ("torch", "onnx")  # engines for .safetensors files; .onnx runs on onnx
    peers: tuple[str, ...] = DEFAULT_PEERS  # haar is always added
    threads: int = 2
    repeats: int = 30
    out: Path = Path("results/bench")
    mlflow: bool | None = None  # None: when a store is configured (see log_mlflow)


def _unique(names: list[str], sources: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return [f"{n} [{Path(s).name}]" if counts[n] > 1 else n for n, s in zip(names, sources)]


def run_bench(settings: BenchSettings) -> dict:
    """Measure every detector; write ``bench.md`` and ``bench.json``; return the report dict."""
    import torch

    from facedet.inference.detector import pipeline_weights

    saved = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(settings.threads)
    cv2.setNumThreads(settings.threads)
    try:
        truth, pictures, described = load_truth(settings.images, settings.image_root)
        with_face = next((p for p, t in zip(pictures, truth) if t.boxes), pictures[0])
        frame = cv2.resize(with_face, FRAME, interpolation=cv2.INTER_AREA)
        non_face, portraits = _non_face(), _portraits()

        runners: list[Runner] = []
        skipped: list[dict] = []
        pipeline = pipeline_weights()
        weights = list(settings.weights) or ([pipeline] if pipeline is not None and pipeline.is_file() else [])
        if not weights:
            skipped.append(
                {"name": "ours", "note": f"no model: {pipeline or 'no project here'} not found and no --weights given"}
            )
        for path in weights:
            engines = ("onnx",) if path.suffix.lower() == ".onnx" else dict.fromkeys(settings.backends)
            for backend in engines:
                runners.append(our_runner(path, backend, settings.threads))
        for name in dict.fromkeys(("haar", *settings.peers)):
            problem = peers.missing(name)
            if problem:
                log.warning("peer %s %s", name, problem)
                skipped.append({"name": name, "note": problem})
                continue
            runners.append(peer_runner(name, settings.threads))
        for runner, name in zip(runners, _unique([r.name for r in runners], [r.source for r in runners])):
            runner.name = name

        rows = []
        for runner in runners:
            log.info("bench: %s", runner.name)
            rows.append(measure(runner, truth, pictures, non_face, portraits))
        log.info("bench: timing %d detectors in turn, %d calls each", len(runners), settings.repeats)
        load = os.getloadavg()[0]
        timings = time_ms([r.timed or r.detect for r in runners], frame, settings.repeats)
        problems = timing_problems([r.name for r in runners], timings, load, os.cpu_count() or 1)
        for row, (ms, cpu_ms, _) in zip(rows, timings):
            row.update(
                ms_per_frame=round(ms, 2),
                cpu_ms_per_frame=round(cpu_ms, 2),
                fps=round(1000.0 / ms, 1) if ms > 0 else None,
            )
    finally:
        torch.set_num_threads(saved[0])
        cv2.setNumThreads(saved[1])

    report = {
        "settings": {
            "images": described,
            "n_images": len(truth),
            "n_faces": sum(len(t.boxes) for t in truth),
            "n_negatives": sum(_negative(t) for t in truth),
            "threads": settings.threads,
            "repeats": settings.repeats,
            "frame": f"{FRAME[0]}x{FRAME[1]}",
            "non_face_photos": len(non_face),
            "non_face_unseen": sum(not seen for _, _, seen in non_face),
            "portraits": [name for name, _, _ in portraits],
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        },
        "detectors": rows,
        "skipped": skipped,
        "timing_problems": problems,
    }
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "bench.md").write_text(markdown(report))
    report["mlflow_run_id"] = log_mlflow(report, out, settings.mlflow)
    return report


# --- reporting ----------------------------------------------------------------------------------


def _size(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _params(row: dict) -> str:
    if row["params"] is None:
        return row["params_note"] or "n/a"
    text = f"{row['params'] / 1e6:.2f} M" if row["params"] >= 1e6 else f"{row['params'] / 1e3:.1f} k"
    return text + (" (published)" if row["params_note"].startswith("published") else "")


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


COLUMNS = (
    "- AP@0.5, AP@[.5:.95]: COCO AP (faster-coco-eval) over every candidate the detector scores.",
    "- P / R @ thr: precision / recall at the detector's own threshold (ours: the model's; peers: the library's "
    "default).",
    "- FP @ thr: false positives at that threshold on the labelled pictures; in brackets those on its negatives "
    "(pictures with no face and no ignore region).",
    "- ms/frame: median wall time of one call on an RGB 640x480 frame (colour conversion, resizing, network, NMS); "
    "in brackets the median process CPU time summed over threads, steadier on a shared machine. FPS = 1000 / ms.",
    "- params, size on disk: counted from our model files; peers: published numbers or n/a.",
    "- FP: boxes at the threshold on real non-face pictures shipped in scikit-image / scikit-learn; most were "
    "backgrounds of the embedded sample, (unseen) counts those that never were.",
    "- landmark NME: mean distance of the five points from the labelled ones over sqrt(box area), on the faces "
    "with labelled landmarks that the detector found at its threshold (how many in brackets); n/a for a detector "
    "without landmarks or a set without them.",
    "- portraits: skimage astronaut, matplotlib grace_hopper.jpg, skimage camera (profile); their faces are pasted "
    "into the embedded sample, so they are not held out.",
)


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [
        f"# facedet bench: {s['images']}",
        "",
        f"{s['n_images']} images with {s['n_faces']} faces; timing on one {s['frame']} frame, median of "
        f"{s['repeats']} calls after warm-up, detectors taking turns of {TIMING_TURN}, {s['threads']} threads "
        f"({s['machine']}).",
        "",
        *(
            [
                "**These times are not reliable**: " + "; ".join(report.get("timing_problems", [])) + ". Run "
                "again on an idle machine.",
                "",
            ]
            if report.get("timing_problems")
            else []
        ),
        f"| detector | AP@0.5 | AP@[.5:.95] | P / R @ thr | FP @ thr (on the {s['n_negatives']} negatives) | ms/frame (CPU ms) | FPS | params | size on disk "
        f"| FP on {s['non_face_photos']} non-face photos (unseen {s['non_face_unseen']}) "
        f"| faces found on {len(s['portraits'])} portraits | landmark NME (faces) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["detectors"]:
        lines.append(
            f"| {r['name']} | {_num(r['ap50'])} | {_num(r['ap50_95'])} | {_num(r['precision'], 2)} / "
            f"{_num(r['recall'], 2)} @ {r['threshold']:g} | {r['fp']} ({r['fp_on_negatives']}) | {r['ms_per_frame']:.1f} ({r['cpu_ms_per_frame']:.1f}) | "
            f"{r['fps']} | {_params(r)} | "
            f"{_size(r['size_bytes'])}{' (' + r['size_note'] + ')' if r['size_note'] and r['size_bytes'] else ''} | "
            f"{r['fp_nonface']} ({r['fp_nonface_unseen']}) | {r['faces_found']}/{r['faces_total']} | "
            f"{_num(r['nme'])} ({r['nme_faces']}) |"
        )
    lines += ["", *COLUMNS, ""]
    for r in report["detectors"]:
        lines.append(f"- {r['name']}: {r['source']}" + "".join(f"; {n}" for n in r["notes"]))
    for item in report["skipped"]:
        lines.append(f"- {item['name']}: {item['note']}")
    return "\n".join(lines) + "\n"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def log_mlflow(report: dict, out: Path, enabled: bool | None = None) -> str | None:
    """An MLflow run (tag ``bench``) in the project's experiment with ``<detector>/<metric>`` metrics
    and bench.md/bench.json. ``enabled`` None: only when a store is configured, i.e.
    ``MLFLOW_TRACKING_URI`` is set or this is a facedet project (its ``tracking`` config)."""
    from facedet.config import ConfigError, compose_config
    from facedet.tracking import Tracker

    if enabled is False:
        return None
    try:
        tracker = Tracker.for_config(compose_config([]))
    except ConfigError:  # no facedet project here
        tracker = Tracker.for_environment()
    if tracker is None:
        return None
    metrics = {}
    for row in report["detectors"]:
        for key in (
            "ap50",
            "ap50_95",
            "precision",
            "recall",
            "ms_per_frame",
            "cpu_ms_per_frame",
            "fps",
            "fp_nonface",
            "fp_nonface_unseen",
            "faces_found",
            "nme",
            "params",
            "size_bytes",
        ):
            if row.get(key) is not None:
                metrics[f"{_slug(row['name'])}/{key}"] = float(row[key])
    s = report["settings"]
    run_id = tracker.create_run(
        "bench",
        {"bench": "true"},
        {
            "images": s["images"][:500],
            "threads": s["threads"],
            "repeats": s["repeats"],
            "frame": s["frame"],
            "detectors": ", ".join(r["name"] for r in report["detectors"]),
        },
    )
    tracker.log_metrics(run_id, metrics)
    for name in ("bench.md", "bench.json"):
        tracker.log_artifact(run_id, Path(out) / name, "bench")
    tracker.end_run(run_id, "FINISHED")
    return run_id
