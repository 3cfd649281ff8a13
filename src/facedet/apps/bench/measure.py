"""One detector measured: AP, precision/recall, landmark NME, false positives, faces found, time."""

from __future__ import annotations

import math

import numpy as np

from facedet.apps.bench.runners import Runner
from facedet.coco import Detection, Image
from facedet.evaluation.metrics import detection_metrics, landmark_metrics


def _counted(detections: list[Detection], threshold: float) -> list[Detection]:
    return [d for d in detections if d.score >= threshold]


def is_negative(image: Image) -> bool:
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
    """A runner's row, all but its timing (see `time_ms`)."""
    predictions = [runner.detect(picture) for picture in pictures]
    metrics = detection_metrics(truth, predictions, runner.threshold)
    marks = landmark_metrics(truth, predictions, runner.threshold)
    on_negatives = sum(len(_counted(p, runner.threshold)) for t, p in zip(truth, predictions) if is_negative(t))
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
