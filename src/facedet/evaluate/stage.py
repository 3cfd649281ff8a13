"""Stage 5, evaluate: the trained model on the held-out test split; metrics and pictures.

Reads the model, the test split and the collected images; writes ``paths.evaluate``/metrics.json
(DVC metrics), pr_curve.json and pr_curve.png, predictions.png (DVC plots) and logs all of them
to the training run in MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from omegaconf import DictConfig

from facedet import coco, tracking
from facedet.detect import FaceDetector
from facedet.evaluate.metrics import detection_metrics, pr_curve
from facedet.evaluate.plots import plot_pr_curve, prediction_grid
from facedet.images import read_rgb


def run(cfg: DictConfig) -> None:
    out = Path(cfg.paths.evaluate)
    out.mkdir(parents=True, exist_ok=True)
    truth = coco.read(Path(cfg.paths.labels) / "test.json")
    detector = FaceDetector.load(Path(cfg.paths.train) / "model.safetensors", threshold=0.0)
    pictures = [read_rgb(Path(cfg.paths.collect) / "images" / image.file_name) for image in truth]
    predictions = [detector(picture) for picture in pictures]

    metrics = detection_metrics(truth, predictions, cfg.evaluate.threshold, cfg.evaluate.iou_threshold)
    metrics = {key: (None if value != value else round(float(value), 4)) for key, value in metrics.items()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    curve = pr_curve(truth, predictions, cfg.evaluate.iou_threshold)
    (out / "pr_curve.json").write_text(json.dumps(
        {"pr_curve": [dict(zip(curve, row)) for row in zip(*curve.values())]}, indent=1) + "\n")
    plot_pr_curve(curve, out / "pr_curve.png", title=f"test AP@0.5 = {metrics['ap50']}")
    shown = slice(0, cfg.evaluate.grid_images)
    prediction_grid(pictures[shown], truth[shown], predictions[shown], out / "predictions.png",
                    threshold=cfg.evaluate.threshold)

    run_id = json.loads((Path(cfg.paths.train) / "run.json").read_text())["run_id"]
    tracking.experiment_id(cfg)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({f"test/{key}": value for key, value in metrics.items() if value is not None})
        for name in ("metrics.json", "pr_curve.json", "pr_curve.png", "predictions.png"):
            mlflow.log_artifact(str(out / name), "evaluate")
