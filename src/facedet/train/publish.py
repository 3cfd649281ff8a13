"""After training: the best epoch's network, its score threshold, the model file, MLflow logging, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import torch
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from facedet import coco, tracking
from facedet.config import tracking_uri
from facedet.evaluate.metrics import best_f1_threshold, pr_curve
from facedet.images import read_rgb
from facedet.inference.detector import FaceDetector
from facedet.model import weights


class Predictor(torch.nn.Module):
    """What MLflow serves: images [B, 3, H, W] in [0, 1] -> [B, N, 5] candidates (x1, y1, x2, y2
    normalised, score) before non-maximum suppression."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.decode(self.net(images))


def best_network(module: torch.nn.Module, checkpoint: Path) -> torch.nn.Module:
    """``module.net`` in eval mode with the weights of ``checkpoint`` (a Lightning checkpoint)."""
    module.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"])
    return module.net.eval()


def validation_threshold(
    net: torch.nn.Module, val_coco: Path, images_dir: Path, iou_threshold: float
) -> tuple[float, float]:
    """(score threshold of best F1, that F1) on the full-size validation pictures; 0.5 without a face."""
    truth = coco.read(val_coco)
    detector = FaceDetector(net, threshold=0.0)
    predictions = [detector(read_rgb(Path(images_dir) / image.file_name)) for image in truth]
    threshold, f1 = best_f1_threshold(pr_curve(truth, predictions, iou_threshold))
    return (0.5 if threshold != threshold else round(threshold, 4)), f1


def publish(
    cfg: DictConfig, net: torch.nn.Module, run_id: str, out: Path, summary: dict, artifacts: list[Path]
) -> dict:
    """Write ``out``/model.safetensors and metrics.json; log weights, checkpoints, ``artifacts`` and the
    servable model to the MLflow run and register it. Returns the full summary."""
    weights.save(
        net,
        OmegaConf.to_container(cfg.model, resolve=True),
        out / "model.safetensors",
        threshold=summary["best/threshold"],
        mlflow_run_id=run_id,
    )
    # The last epoch's values; from the MLflow run where this process trained no epoch itself (resumed
    # from a checkpoint of the last epoch, killed while logging the model).
    logged = MlflowClient(tracking_uri(cfg)).get_run(run_id).data.metrics
    summary = {**{k: v for k, v in logged.items() if k.startswith(("train/", "val/"))}, **summary}
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({tracking.result_metric(k): v for k, v in summary.items() if k.startswith("best/")})
        mlflow.log_artifact(str(out / "model.safetensors"), "weights")
        mlflow.log_artifacts(str(out / "checkpoints"), "checkpoints")
        for path in artifacts:
            if path.is_file():
                mlflow.log_artifact(str(path), "augment")
        size = int(cfg.model.input_size)
        example = torch.rand(1, 3, size, size)
        predictor = Predictor(net).eval()
        with torch.no_grad():
            output = predictor(example).numpy()
        mlflow.pytorch.log_model(
            predictor, name="model", input_example=example.numpy(), signature=infer_signature(example.numpy(), output)
        )
    registry = tracking.register(cfg, run_id)
    summary.update({"registry/version": registry["version"], "registry/champion": float(registry["champion"])})
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
