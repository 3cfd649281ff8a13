"""The ``export`` stage: ``paths.train``/model.safetensors -> model.onnx beside it, checked against
PyTorch, and logged with the difference to the training run in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from facedet.inference.onnx import export_onnx


def run(cfg: DictConfig) -> None:
    import mlflow

    from facedet import tracking

    source = Path(cfg.paths.train) / "model.safetensors"
    diff = export_onnx(source, source.with_suffix(".onnx"))
    run_id = json.loads((Path(cfg.paths.train) / "run.json").read_text())["run_id"]
    tracking.experiment_id(cfg)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifact(str(source.with_suffix(".onnx")), "onnx")
        mlflow.log_metric("export/onnx_max_abs_diff", diff)
