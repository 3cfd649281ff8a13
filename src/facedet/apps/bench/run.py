"""A bench run: every detector on the same pictures, with the same threads; the report."""

from __future__ import annotations

import json
import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from facedet.apps import peers
from facedet.apps.bench.measure import is_negative, measure
from facedet.apps.bench.pictures import DEFAULT_PEERS, FRAME, load_truth, non_face_pictures, portrait_pictures
from facedet.apps.bench.report import log_mlflow, markdown
from facedet.apps.bench.runners import Runner, our_runner, peer_runner, time_ms, timing_problems

log = logging.getLogger(__name__)


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
        non_face, portraits = non_face_pictures(), portrait_pictures()

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
            "n_negatives": sum(is_negative(t) for t in truth),
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
