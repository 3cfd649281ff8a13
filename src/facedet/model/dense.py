"""A small anchor-free dense face detector trained from scratch, after YuNet (and SCRFD's head/loss).

Backbone: a 3x3 stem then "ConvDP" units (1x1 pointwise, 3x3 depthwise, batch norm, ReLU), max pooling
between stages, features taken at strides 8, 16 and 32. Neck: 1x1 lateral convolutions to one width,
a top-down pass (upsample + add, as an FPN) and a bottom-up pass (strided depthwise + add, as a PAN),
one ConvDP after each merge. Head: per level one ConvDP and one 1x1 convolution predicting, at every
feature-map location (a "prior point" at the cell centre), a face logit and four box distances
(left, top, right, bottom) from the point to the box sides, as ``exp(raw) * stride``.

With ``landmarks`` a separate branch per level (3x3 depthwise + 1x1, as YuNet's separate branches)
predicts the five points of `facedet.coco.KEYPOINT_NAMES` as offsets from the prior point in
strides: ``point = prior centre + raw * stride`` (SCRFD, YuNet). It reads the head's features, or
with ``landmark_depth`` > 0 its own ConvDP units on the neck's.

The face logit is trained as a quality score (its target is the IoU of the predicted box with its face,
see [`facedet.loss.dense.DenseLoss`][]), so the score ranks boxes by how well they fit.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from facedet.coco import NUM_KEYPOINTS

STRIDES = (8, 16, 32)
# exp() of a larger raw distance would be over e^8 = 2981 strides: far outside any input.
MAX_LOG_DISTANCE = 8.0


class ConvDP(nn.Module):
    """YuNet's unit: 1x1 pointwise (no bias, no activation), 3x3 depthwise (``stride``), BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.depthwise = nn.Conv2d(out_channels, out_channels, 3, stride, 1, groups=out_channels, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.depthwise(self.pointwise(x))), inplace=True)


class DenseNet(nn.Module):
    """Input: float images [B, 3, H, W] in [0, 1], H and W multiples of 32 (any size), letterboxed.

    ``input_size``: side of the square training crops; ``detect_size``: longest side pictures are
    scanned at for validation and detection (default ``input_size``). ``widths``: channels of the
    backbone stages at strides 2, 4, 8, 16, 32; ``depth``: ConvDP units per stage from stride 4 on; ``neck_width``: channels of the neck and head. The default (widths
    16/32/64/96/128, depth 1, neck 48) has about 87 k parameters.

    forward -> {"face_logit": [B, N], "box": [B, N, 4] raw log-distances (l, t, r, b) in strides,
    "priors": [N, 3] (cx, cy, stride) in input pixels, "size": [2] (W, H) of the input}, N the
    number of locations over the three levels (``H*W/64 + H*W/256 + H*W/1024``), finest level first;
    with ``landmarks`` also "landmarks": [B, N, 10] raw offsets (x1, y1, ..., x5, y5) in strides.
    ``landmarks=False`` is the box-only network (model files made before landmarks load as that).
    ``landmark_depth``: ConvDP units of the landmark branch's own tower on the neck (0: it shares the
    box head's; model files without the key are that).
    """

    resize = "letterbox"
    strides = STRIDES

    def __init__(
        self,
        input_size: int = 320,
        detect_size: int | None = None,
        widths: tuple[int, ...] = (16, 32, 64, 96, 128),
        depth: int = 1,
        neck_width: int = 48,
        prior_prob: float = 0.01,
        landmarks: bool = False,
        landmark_depth: int = 0,
    ) -> None:
        super().__init__()
        self.landmarks = bool(landmarks)
        if len(widths) != 5:
            raise ValueError(f"config key 'model.widths' = {list(widths)}: expected 5 widths (strides 2..32)")
        self.input_size = input_size
        self.detect_size = int(detect_size or input_size)
        widths = tuple(int(w) for w in widths)
        stem = [nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        # No ConvDP at stride 2: at half resolution every elementwise op costs as much as the rest of
        # the network, and a face is at least a few pixels at stride 8 anyway.
        self.stages = nn.ModuleList([nn.Sequential(*stem)])
        for cin, cout in zip(widths[:-1], widths[1:]):
            units = [nn.MaxPool2d(2), ConvDP(cin, cout)] + [ConvDP(cout, cout) for _ in range(depth)]
            self.stages.append(nn.Sequential(*units))
        self.lateral = nn.ModuleList([nn.Conv2d(w, neck_width, 1, bias=False) for w in widths[2:]])
        self.top_down = nn.ModuleList([ConvDP(neck_width, neck_width) for _ in STRIDES[:-1]])
        self.downsample = nn.ModuleList(
            [nn.Conv2d(neck_width, neck_width, 3, 2, 1, groups=neck_width, bias=False) for _ in STRIDES[:-1]]
        )
        self.bottom_up = nn.ModuleList([ConvDP(neck_width, neck_width) for _ in STRIDES[:-1]])
        self.head = nn.ModuleList([ConvDP(neck_width, neck_width) for _ in STRIDES])
        self.predict = nn.ModuleList([nn.Conv2d(neck_width, 5, 1) for _ in STRIDES])
        self.landmark_depth = int(landmark_depth) if self.landmarks else 0
        if self.landmarks:
            self.predict_landmarks = nn.ModuleList(
                [
                    nn.Sequential(
                        *[ConvDP(neck_width, neck_width) for _ in range(self.landmark_depth)],
                        nn.Conv2d(neck_width, neck_width, 3, 1, 1, groups=neck_width, bias=False),
                        nn.Conv2d(neck_width, 2 * NUM_KEYPOINTS, 1),
                    )
                    for _ in STRIDES
                ]
            )
        for conv in self.predict:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
            # Focal-loss prior: every location starts at P(face) = prior_prob, so the many
            # background points do not swamp the first steps.
            nn.init.constant_(conv.bias[:1], -math.log((1 - prior_prob) / prior_prob))

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The neck's outputs at strides 8, 16, 32."""
        x, taps = images, []
        for stage in self.stages:
            x = stage(x)
            taps.append(x)
        levels = [lat(t) for lat, t in zip(self.lateral, taps[2:])]
        for i in (1, 0):  # top-down: coarse context into the finer maps
            levels[i] = self.top_down[i](levels[i] + F.interpolate(levels[i + 1], scale_factor=2.0, mode="nearest"))
        for i in (0, 1):  # bottom-up: fine detail into the coarser maps
            levels[i + 1] = self.bottom_up[i](levels[i + 1] + self.downsample[i](levels[i]))
        return levels

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        logits, boxes, priors, points = [], [], [], []
        for i, (level, stride) in enumerate(zip(self.features(images), STRIDES)):
            tower = self.head[i](level)
            out = self.predict[i](tower)  # [B, 5, h, w]
            h, w = out.shape[-2:]
            out = out.flatten(2).transpose(1, 2)  # [B, h*w, 5], row-major over (y, x)
            logits.append(out[..., 0])
            boxes.append(out[..., 1:])
            priors.append(_prior_points(h, w, stride, images))
            if self.landmarks:
                source = level if self.landmark_depth else tower
                points.append(self.predict_landmarks[i](source).flatten(2).transpose(1, 2))
        # (W, H) from the last stride-8 prior ((W - 4, H - 4)): tensor ops, so ONNX tracing keeps the
        # input size dynamic and torch.export (MLflow's log_model) can follow it.
        size = priors[0][-1, :2] + STRIDES[0] / 2
        outputs = {
            "face_logit": torch.cat(logits, 1),
            "box": torch.cat(boxes, 1),
            "priors": torch.cat(priors, 0),
            "size": size,
        }
        if self.landmarks:
            outputs["landmarks"] = torch.cat(points, 1)
        return outputs

    @staticmethod
    def boxes_in_pixels(box: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
        """Raw log-distances [..., N, 4] and priors [N, 3] -> boxes [..., N, 4] (x1, y1, x2, y2) in pixels."""
        distance = torch.exp(box.clamp(max=MAX_LOG_DISTANCE)) * priors[:, 2:3]
        centre = priors[:, :2]
        return torch.cat([centre - distance[..., :2], centre + distance[..., 2:]], dim=-1)

    @staticmethod
    def points_in_pixels(raw: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
        """Raw landmark offsets [..., N, 10] and priors [N, 3] -> points [..., N, 10] (x1, y1, ...) in pixels."""
        return raw * priors[:, 2:3] + priors[:, :2].repeat(1, NUM_KEYPOINTS)

    def decode(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, N, 5]: every prior's box (x1, y1, x2, y2) normalised to the input and clipped to [0, 1],
        and its face score in [0, 1]; before threshold and NMS. Traceable with dynamic H, W.
        With landmarks [B, N, 15]: then the five points (x1, y1, ..., x5, y5) normalised to the input."""
        boxes = self.boxes_in_pixels(outputs["box"], outputs["priors"]) / outputs["size"].repeat(2)
        score = torch.sigmoid(outputs["face_logit"]).unsqueeze(-1)
        columns = [boxes.clamp(0.0, 1.0), score]
        if "landmarks" in outputs:
            points = self.points_in_pixels(outputs["landmarks"], outputs["priors"])
            columns.append(points / outputs["size"].repeat(NUM_KEYPOINTS))
        return torch.cat(columns, dim=-1)


def _prior_points(h: int, w: int, stride: int, like: torch.Tensor) -> torch.Tensor:
    """``[h*w, 3]``: (cx, cy, stride) of each cell centre in input pixels, row-major like the flattened maps."""
    ys = (torch.arange(h, device=like.device).to(like.dtype) + 0.5) * stride
    xs = (torch.arange(w, device=like.device).to(like.dtype) + 0.5) * stride
    cy = ys[:, None].expand(-1, w).reshape(-1)
    cx = xs[None, :].expand(h, -1).reshape(-1)
    return torch.stack([cx, cy, torch.full_like(cx, float(stride))], dim=1)
