"""The seed's custom loss, with its flaw fixed: the box term only counts images that have a face."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SingleFaceLoss(nn.Module):
    """total = box_weight * localisation + face_weight * BCE.

    localisation (the seed's): per image with a face, (x1 - x1')^2 + (y1 - y1')^2 + (w - w')^2 +
    (h - h')^2 on normalised (x1, y1, x2, y2) boxes, averaged over the images with a face (the seed
    summed over the whole batch, negatives included, which pulled their boxes to [0, 0, 0, 0]).
    A batch with no face has a localisation term of exactly 0.
    """

    def __init__(self, box_weight: float = 1.0, face_weight: float = 0.5) -> None:
        super().__init__()
        self.box_weight, self.face_weight = box_weight, face_weight

    def forward(
        self, outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """targets[i]["boxes"]: FloatTensor[N, 4], normalised (x1, y1, x2, y2); the largest face is the target."""
        has_face = torch.tensor([len(t["boxes"]) > 0 for t in targets], device=outputs["box"].device)
        face = F.binary_cross_entropy_with_logits(outputs["face_logit"], has_face.float())
        if not has_face.any():
            box = outputs["box"].sum() * 0.0
        else:
            true = torch.stack([_largest(t["boxes"]) for t, f in zip(targets, has_face) if f])
            pred = outputs["box"][has_face]
            corner = (pred[:, :2] - true[:, :2]).pow(2).sum(1)
            size = ((pred[:, 2:] - pred[:, :2]) - (true[:, 2:] - true[:, :2])).pow(2).sum(1)
            box = (corner + size).mean()
        return {"loss": self.box_weight * box + self.face_weight * face, "box": box.detach(), "face": face.detach()}


def _largest(boxes: torch.Tensor) -> torch.Tensor:
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[areas.argmax()]
