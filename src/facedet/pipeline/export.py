"""The ``export`` stage: ``paths.train``/model.safetensors -> model.onnx beside it, checked against
PyTorch, and logged with the difference to the training run in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from facedet.inference.onnx import export_onnx
from facedet.tracking import Tracker, result_metric


def run(cfg: DictConfig) -> None:
    source = Path(cfg.paths.train) / "model.safetensors"
    run_id = json.loads((Path(cfg.paths.train) / "run.json").read_text())["run_id"]
    tracker = Tracker.for_config(cfg)
    with tracker.continue_run(run_id):  # the training run; marked FAILED if the export fails
        diff = export_onnx(source, source.with_suffix(".onnx"))
        tracker.log_artifact(run_id, source.with_suffix(".onnx"), "onnx")
        tracker.log_metrics(run_id, {result_metric("export/onnx_max_abs_diff"): diff})
    print(
        f"export: {source.with_suffix('.onnx')} (ONNX Runtime vs PyTorch max abs difference {diff:.2g}); "
        f"MLflow run {tracker.run_link(run_id)}"
    )
