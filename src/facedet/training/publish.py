"""After training: the best epoch's network, its score threshold, the model file, MLflow logging, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from facedet import coco
from facedet.evaluation.metrics import best_f1_threshold, pr_curve
from facedet.images import read_rgb
from facedet.inference.detector import FaceDetector
from facedet.inference.onnx import Decoded
from facedet.model import weights
from facedet.tracking import Tracker, result_metric


class Predictor(Decoded):
    """What MLflow serves: images [B, 3, H, W] in [0, 1] -> [B, N, 5] candidates (x1, y1, x2, y2
    normalised, score; then the five landmarks x1, y1, ..., x5, y5 normalised, [B, N, 15], for a model
    with landmarks) before non-maximum suppression. The dense model takes any batch and any H, W
    that are multiples of its largest stride (32; letterboxed pictures, e.g. 640 x 480), the
    single-face model S x S pictures (S = its input size)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__(net)
        strides = getattr(net, "strides", None)
        self.multiple = max(strides) if strides else None  # None: a fixed input size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.multiple:
            # A no-op at the sizes the model takes (anything else loses its right/bottom remainder):
            # it lets torch.export (MLflow's pt2 format) trace H and W as dynamic sizes.
            m = self.multiple
            images = images[:, :, : images.shape[2] // m * m, : images.shape[3] // m * m]
        return super().forward(images)

    def input_example(self) -> np.ndarray:
        """What MLflow traces the model with (pt2) and stores as its input example, kept small (about
        100 KB of JSON, not the ~10 MB of a 320 x 320 float image): 2 pictures (torch.export fixes a
        dimension of size 1, the batch would be static) of the smallest size the model takes (dense:
        twice the largest stride, so that the coarsest feature map is not 1 x 1 either), values on a
        1/4 grid (short JSON numbers)."""
        side = 2 * self.multiple if self.multiple else int(self.net.input_size)
        pattern = np.add.outer(np.arange(side), np.arange(side)) % 5 / 4  # diagonal stripes in [0, 1]
        return np.stack([np.stack([pattern, 1 - pattern, pattern[::-1]])] * 2).astype(np.float32)


def log_servable(tracker: Tracker, run_id: str, net: torch.nn.Module):
    """Log ``net`` as the run's servable model ``model`` (mlflow.pytorch, pt2: torch.export); its
    MLflow ModelInfo."""
    predictor = Predictor(net).eval()
    example = predictor.input_example()
    with torch.no_grad():
        output = predictor(torch.from_numpy(example)).numpy()
    return tracker.log_servable(run_id, predictor, example, output, any_size=predictor.multiple is not None)


def best_network(module: torch.nn.Module, checkpoint: Path) -> torch.nn.Module:
    """``module.net`` in eval mode with the weights of ``checkpoint`` (a Lightning checkpoint)."""
    module.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"])
    return module.net.eval()


def split_predictions(net: torch.nn.Module, split_coco: Path, images_dir: Path) -> tuple[list, list]:
    """A split's truth and every candidate (threshold 0) ``net`` finds on its full-size pictures."""
    truth = coco.read(split_coco)
    detector = FaceDetector(net, threshold=0.0)
    return truth, [detector(read_rgb(Path(images_dir) / image.file_name)) for image in truth]


def validation_threshold(
    net: torch.nn.Module, val_coco: Path, images_dir: Path, iou_threshold: float
) -> tuple[float, float]:
    """(score threshold of best F1, that F1) on the full-size validation pictures; 0.5 without a face."""
    truth, predictions = split_predictions(net, val_coco, images_dir)
    threshold, f1 = best_f1_threshold(pr_curve(truth, predictions, iou_threshold))
    return (0.5 if threshold != threshold else round(threshold, 4)), f1


def publish(
    cfg: DictConfig, net: torch.nn.Module, tracker: Tracker, run_id: str, summary: dict, artifacts: list[Path]
) -> dict:
    """Write ``paths.train``/model.safetensors and metrics.json; log weights, checkpoints, ``artifacts`` and the
    servable model to the MLflow run and register it. Returns the full summary."""
    out = Path(cfg.paths.train)
    weights.save(
        net,
        OmegaConf.to_container(cfg.model, resolve=True),
        out / "model.safetensors",
        threshold=summary["best/threshold"],
        mlflow_run_id=run_id,
    )
    # The last epoch's values; from the MLflow run where this process trained no epoch itself (resumed
    # from a checkpoint of the last epoch, killed while logging the model).
    logged = tracker.metrics(run_id)
    summary = {**{k: v for k, v in logged.items() if k.startswith(("train/", "val/"))}, **summary}
    with tracker.continue_run(run_id):
        tracker.log_metrics(run_id, {result_metric(k): v for k, v in summary.items() if k.startswith("best/")})
        tracker.log_artifact(run_id, out / "model.safetensors", "weights")
        tracker.log_artifact(run_id, out / "checkpoints", "checkpoints")
        for path in artifacts:
            if path.is_file():
                tracker.log_artifact(run_id, path, "augment")
        log_servable(tracker, run_id, net)
    registry = tracker.register(run_id)
    summary.update({"registry/version": registry["version"], "registry/champion": float(registry["champion"])})
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
