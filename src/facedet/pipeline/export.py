"""The ``export`` stage: ``paths.train``/model.safetensors -> model.onnx beside it, checked against
PyTorch, and logged with the difference to the training run in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from omegaconf import DictConfig

from facedet import tracking
from facedet.inference.onnx import export_onnx


def run(cfg: DictConfig) -> None:
    source = Path(cfg.paths.train) / "model.safetensors"
    run_id = json.loads((Path(cfg.paths.train) / "run.json").read_text())["run_id"]
    tracking.experiment_id(cfg)
    with mlflow.start_run(run_id=run_id):  # the training run; marked FAILED if the export fails
        diff = export_onnx(source, source.with_suffix(".onnx"))
        mlflow.log_artifact(str(source.with_suffix(".onnx")), "onnx")
        mlflow.log_metric(tracking.result_metric("export/onnx_max_abs_diff"), diff)
    print(
        f"export: {source.with_suffix('.onnx')} (ONNX Runtime vs PyTorch max abs difference {diff:.2g}); "
        f"MLflow run {tracking.run_link(cfg, run_id)}"
    )
