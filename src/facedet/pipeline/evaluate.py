"""Stage 5, evaluate: the trained model on the held-out test split; metrics and pictures.

Reads the model, the test split and the collected images; writes ``paths.evaluate``/metrics.json
(DVC metrics: AP@0.5, AP@[.5:.95], AP by face size, P/R/F1 at the threshold, mean IoU, image
accuracy, false positives per negative image; for a model with landmarks and test faces that have
them, the NME per point and overall and its failure rate), pr_curve.json + .png, robustness.json + .png (AP
under darker, brighter, rotated, blurred and JPEG-compressed copies) and predictions.png, and logs
them, with the collect and labels reports, to the training run in MLflow (as artifacts; the headline
results also as metrics).
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from facedet import coco, progress
from facedet.evaluation.metrics import detection_metrics, landmark_metrics, pr_curve
from facedet.evaluation.plots import plot_pr_curve, prediction_grid
from facedet.evaluation.robustness import plot_robustness, robustness_report
from facedet.images import read_rgb
from facedet.inference.detector import FaceDetector
from facedet.tracking import Tracker, result_metric

PICTURES = ("pr_curve.png", "robustness.png", "predictions.png")
# The test results logged as MLflow metrics (the landmark ones for a model with landmarks).
MLFLOW_METRICS = ("ap50", "ap50_95", "f1", "precision", "recall", "nme", "nme_failure_rate")


def _clean(value: float) -> float | None:
    """JSON-friendly: nan (a metric with nothing to measure) becomes null."""
    return None if value != value else round(float(value), 4)


def split_metrics(truth: list[coco.Image], predictions: list, threshold: float, iou_threshold: float) -> dict:
    """metrics.json's values: detection metrics, and landmark ones for faces with points, at ``threshold``."""
    metrics = detection_metrics(truth, predictions, threshold, iou_threshold)
    metrics |= landmark_metrics(truth, predictions, threshold, iou_threshold)
    return {key: _clean(value) for key, value in metrics.items()} | {"threshold": threshold}


def run(cfg: DictConfig) -> None:
    run_id = json.loads((Path(cfg.paths.train) / "run.json").read_text())["run_id"]
    tracker = Tracker.for_config(cfg)
    with tracker.continue_run(run_id):  # the training run; marked FAILED if this stage fails
        metrics = _evaluate(cfg, tracker, run_id)
    nme = f", landmark NME {metrics['nme']} (failure rate {metrics['nme_failure_rate']})" if "nme" in metrics else ""
    print(
        f"evaluate: test AP@0.5 {metrics['ap50']}, AP@[.5:.95] {metrics['ap50_95']}, F1 {metrics.get('f1')} at "
        f"threshold {metrics['threshold']:g}{nme}; MLflow run {tracker.run_link(run_id)}"
    )


def _evaluate(cfg: DictConfig, tracker: Tracker, run_id: str) -> dict[str, float | None]:
    out = Path(cfg.paths.evaluate)
    out.mkdir(parents=True, exist_ok=True)
    truth = coco.read(Path(cfg.paths.labels) / "test.json")
    # PyTorch: this measures the trained weights themselves, whatever the export stage makes of them.
    detector = FaceDetector.load(Path(cfg.paths.train) / "model.safetensors", backend="torch")
    threshold = detector.threshold if cfg.evaluate.threshold is None else cfg.evaluate.threshold
    # Streamed: only the pictures the robustness report and the grid reuse stay in memory.
    kept = len(truth) if cfg.evaluate.robustness_images is None else cfg.evaluate.robustness_images
    kept = max(kept, cfg.evaluate.grid_images)
    pictures, predictions = [], []
    for image in progress.track(truth, "evaluate"):
        picture = read_rgb(Path(cfg.paths.collect) / "images" / image.file_name)
        predictions.append(detector.detect_batch([picture], threshold=0.0)[0])
        if len(pictures) < kept:
            pictures.append(picture)

    metrics = split_metrics(truth, predictions, threshold, cfg.evaluate.iou_threshold)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    curve = pr_curve(truth, predictions, cfg.evaluate.iou_threshold)
    (out / "pr_curve.json").write_text(
        json.dumps({"pr_curve": [dict(zip(curve, row)) for row in zip(*curve.values())]}, indent=1) + "\n"
    )
    plot_pr_curve(curve, out / "pr_curve.png", title=f"test AP@0.5 = {metrics['ap50']}")

    perturbed = slice(0, cfg.evaluate.robustness_images)
    rows = robustness_report(detector, pictures[perturbed], truth[perturbed], threshold, cfg.evaluate.iou_threshold)
    rows = [{key: _clean(v) if isinstance(v, float) else v for key, v in row.items()} for row in rows]
    (out / "robustness.json").write_text(json.dumps({"robustness": rows}, indent=1) + "\n")
    plot_robustness(rows, out / "robustness.png", title="test AP@0.5 under perturbations")

    shown = slice(0, cfg.evaluate.grid_images)
    prediction_grid(pictures[shown], truth[shown], predictions[shown], out / "predictions.png", threshold=threshold)

    # MLflow draws a chart for every metric of a run: it gets the results runs are compared by, named
    # test.KEY (after the train/val curves); all the others are in the run's evaluate/*.json.
    tracker.log_metrics(run_id, {result_metric(f"test/{k}"): metrics[k] for k in MLFLOW_METRICS if k in metrics})
    for name in ("metrics.json", "pr_curve.json", "robustness.json", *PICTURES):
        tracker.log_artifact(run_id, out / name, "evaluate")
    for stage, folder in cfg.paths.items():  # the bad-input reports of the stages that write one
        if (Path(folder) / "report.json").is_file():
            tracker.log_artifact(run_id, Path(folder) / "report.json", f"reports/{stage}")
    return metrics
