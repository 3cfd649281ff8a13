"""The seed's network: a VGG-style backbone and two dense heads; at most one face per image."""

from __future__ import annotations

import torch
from torch import nn

VGG_CHANNELS = (64, 128, 256, 512, 512)


class SingleFaceNet(nn.Module):
    """Input: float images [B, 3, S, S] in [0, 1], the whole picture stretched to S x S.

    forward -> {"face_logit": [B], "box": [B, 4]} with the box as (x1, y1, x2, y2) in [0, 1].
    ``width=1, stages=(2, 2, 3, 3, 3), hidden=2048, batch_norm=False`` is the seed's VGG16 model.
    """

    resize = "stretch"

    def __init__(
        self,
        input_size: int = 120,
        width: float = 1.0,
        stages: tuple[int, ...] = (2, 2, 3, 3, 3),
        hidden: int = 2048,
        dropout: float = 0.0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.input_size = self.detect_size = input_size  # one face per picture, stretched to the input
        layers: list[nn.Module] = []
        in_channels = 3
        for convs, channels in zip(stages, VGG_CHANNELS):
            channels = max(8, round(channels * width))
            for _ in range(convs):
                layers += [nn.Conv2d(in_channels, channels, 3, padding=1, bias=not batch_norm)]
                layers += [nn.BatchNorm2d(channels)] if batch_norm else []
                layers += [nn.ReLU(inplace=True)]
                in_channels = channels
            layers.append(nn.MaxPool2d(2))
        self.backbone = nn.Sequential(*layers)
        self.face_head = self._head(in_channels, hidden, dropout, 1)
        self.box_head = self._head(in_channels, hidden, dropout, 4)

    @staticmethod
    def _head(in_features: int, hidden: int, dropout: float, out_features: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, out_features)
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = torch.amax(self.backbone(images), dim=(2, 3))  # global max pooling, as the seed
        return {"face_logit": self.face_head(features).squeeze(1), "box": torch.sigmoid(self.box_head(features))}

    def decode(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, 1, 5]: the one candidate face per image, (x1, y1, x2, y2) normalised, and its score."""
        box = outputs["box"]
        x1, x2 = torch.minimum(box[:, 0], box[:, 2]), torch.maximum(box[:, 0], box[:, 2])
        y1, y2 = torch.minimum(box[:, 1], box[:, 3]), torch.maximum(box[:, 1], box[:, 3])
        return torch.stack([x1, y1, x2, y2, torch.sigmoid(outputs["face_logit"])], dim=1)[:, None]
