"""Use a trained model: faces in images, as boxes in pixels of the original image with scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from rich.progress import track

from facedet.coco import Detection
from facedet.images import ImageError, list_images, read_rgb
from facedet.model import predict, weights
from facedet.model.inputs import prepare

DEFAULT_WEIGHTS = Path("results/train/model.safetensors")


class FaceDetector:
    """A loaded network; call it on an RGB image (HxWx3 uint8) or a list of them."""

    def __init__(self, net: torch.nn.Module, threshold: float = 0.5) -> None:
        self.net, self.threshold = net.eval(), threshold

    @classmethod
    def load(cls, path: Path | str = DEFAULT_WEIGHTS, threshold: float | None = None) -> FaceDetector:
        net, metadata = weights.load(Path(path))
        return cls(net, threshold if threshold is not None else metadata.get("threshold", 0.5))

    def __call__(self, image: np.ndarray) -> list[Detection]:
        return self.detect_batch([image])[0]

    @torch.no_grad()
    def detect_batch(self, images: list[np.ndarray], threshold: float | None = None) -> list[list[Detection]]:
        """Faces scoring at least ``threshold`` (default: the detector's), best first, per image."""
        threshold = self.threshold if threshold is None else threshold
        prepared = [prepare(image, self.net.input_size, self.net.resize) for image in images]
        batch = torch.stack([tensor for tensor, _ in prepared])
        results = []
        for (_, placement), rows in zip(prepared, predict(self.net, batch, threshold)):
            boxes = placement.to_picture(rows[:, :4]).round(2)
            results.append([Detection(tuple(box.tolist()), round(float(score), 4))
                            for box, score in zip(boxes, rows[:, 4])])
        return results


def detect_to_json(source: Path, out: Path, weights_path: Path = DEFAULT_WEIGHTS,
                   threshold: float | None = None) -> dict:
    """Detect faces in an image or every image under a folder and write the JSON contract:
    ``{"images": [{"file", "width", "height", "faces": [{"box": [x1, y1, x2, y2], "score"}]}],
    "errors": [{"file", "problem"}]}``."""
    detector = FaceDetector.load(weights_path, threshold)
    source = Path(source)
    files = [source] if source.is_file() else list_images(source)
    if not files:
        raise FileNotFoundError(f"{source}: no image found")
    result: dict = {"images": [], "errors": []}
    for path in track(files, description="detect", transient=True, disable=len(files) < 10):
        name = path.name if source.is_file() else path.relative_to(source).as_posix()
        try:
            image = read_rgb(path)
        except ImageError as err:
            result["errors"].append({"file": name, "problem": str(err)})
            continue
        faces = detector(image)
        result["images"].append({"file": name, "width": image.shape[1], "height": image.shape[0],
                                 "faces": [{"box": list(f.box), "score": f.score} for f in faces]})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result
