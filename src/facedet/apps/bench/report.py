"""The report as a table (bench.md) and as an MLflow run."""

from __future__ import annotations

import re
from pathlib import Path

from facedet.apps.bench.runners import TIMING_TURN


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
    "into the embedded sample, so they are not held out; in brackets the boxes at the threshold that are no face "
    "(a cap badge, a medal ribbon).",
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
        f"| faces found (false boxes) on {len(s['portraits'])} portraits | landmark NME (faces) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["detectors"]:
        lines.append(
            f"| {r['name']} | {_num(r['ap50'])} | {_num(r['ap50_95'])} | {_num(r['precision'], 2)} / "
            f"{_num(r['recall'], 2)} @ {r['threshold']:g} | {r['fp']} ({r['fp_on_negatives']}) | {r['ms_per_frame']:.1f} ({r['cpu_ms_per_frame']:.1f}) | "
            f"{r['fps']} | {_params(r)} | "
            f"{_size(r['size_bytes'])}{' (' + r['size_note'] + ')' if r['size_note'] and r['size_bytes'] else ''} | "
            f"{r['fp_nonface']} ({r['fp_nonface_unseen']}) | {r['faces_found']}/{r['faces_total']} "
            f"({sum(p['false_positives'] for p in r['portraits'].values())}) | "
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
