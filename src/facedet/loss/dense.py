"""The loss of [`facedet.model.dense.DenseNet`][]: ATSS assignment, (quality) focal face-ness, IoU-family box.

Works in input pixels: targets come normalised to the input and are scaled by the input size the
network reports, so distance-based terms (DIoU, EIoU, the assigner) see true geometry on any W x H.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from facedet.coco import NUM_KEYPOINTS
from facedet.model.dense import DenseNet

IOU_TYPES = ("iou", "giou", "diou", "eiou")
FACE_LOSSES = ("qfl", "focal")
LANDMARK_LOSSES = ("smooth_l1", "wing")
SMOOTH_L1_BETA = 1 / 9  # SCRFD's, in strides
WING_WIDTH, WING_CURVATURE = 10.0, 2.0  # YOLO5Face's w and epsilon
_EPS = 1e-7


def iou_family(pred: torch.Tensor, target: torch.Tensor, kind: str = "giou") -> torch.Tensor:
    """Row-wise [..., 4] x [..., 4] (x1, y1, x2, y2) -> [...] similarity; the box loss is 1 - this.

    iou: |A n B| / |A u B|. giou: iou - (|C| - |A u B|) / |C|, C the smallest enclosing box.
    diou: iou - d^2 / c^2, d the centre distance, c the diagonal of C.
    eiou: diou - (w - w')^2 / C_w^2 - (h - h')^2 / C_h^2 (Zhang et al. 2022; YuNet's box loss).
    """
    if kind not in IOU_TYPES:
        raise ValueError(f"config key 'loss.iou_type' = {kind!r}: expected one of {IOU_TYPES}")
    wh_p, wh_t = (pred[..., 2:] - pred[..., :2]).clamp(min=0), (target[..., 2:] - target[..., :2]).clamp(min=0)
    inter_wh = (torch.minimum(pred[..., 2:], target[..., 2:]) - torch.maximum(pred[..., :2], target[..., :2])).clamp(
        min=0
    )
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = wh_p[..., 0] * wh_p[..., 1] + wh_t[..., 0] * wh_t[..., 1] - inter
    iou = inter / (union + _EPS)
    if kind == "iou":
        return iou
    enclose = torch.maximum(pred[..., 2:], target[..., 2:]) - torch.minimum(pred[..., :2], target[..., :2])
    if kind == "giou":
        area = enclose[..., 0] * enclose[..., 1]
        return iou - (area - union) / (area + _EPS)
    centre = (pred[..., :2] + pred[..., 2:] - target[..., :2] - target[..., 2:]) / 2
    diou = iou - centre.pow(2).sum(-1) / (enclose.pow(2).sum(-1) + _EPS)
    if kind == "diou":
        return diou
    return diou - ((wh_p - wh_t).pow(2) / (enclose.pow(2) + _EPS)).sum(-1)


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[G, 4] x [N, 4] -> [G, N] plain IoU."""
    return iou_family(a[:, None, :], b[None, :, :], "iou")


def atss_assign(
    gt: torch.Tensor,
    priors: torch.Tensor,
    topk: int = 9,
    anchor_scale: float = 4.0,
    centre_inside: bool = True,
    levels: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive Training Sample Selection (Zhang et al. 2020) on point priors.

    gt [G, 4] boxes and priors [N, 3] (cx, cy, stride), both in pixels. Each prior stands for a square
    "anchor" of side ``anchor_scale * stride`` centred on it (only used to measure IoU here). Per face:

      1. candidates: on every level the ``topk`` priors whose centres are nearest the face centre;
      2. threshold = mean + std (unbiased, as the reference code) of the candidates' anchor-face IoUs,
         so it adapts to the face's size and to how well the levels fit it;
      3. positives: candidates with IoU >= threshold whose point lies inside the face box
         (``centre_inside``);
      4. a prior positive for several faces goes to the one it overlaps most (anchor IoU);
      5. (not in ATSS) a face left with no positive gets its best-IoU candidate, so every labelled
         face, however small, trains the box head.
    ``levels``: the prior indices of each level (found from the strides when not given).
    Returns (assigned [N] long: face index or -1 for background, positive [N] bool).
    """
    n = priors.shape[0]
    assigned = torch.full((n,), -1, dtype=torch.long, device=priors.device)
    if gt.numel() == 0:
        return assigned, assigned >= 0
    half = priors[:, 2:3] * (anchor_scale / 2)
    anchors = torch.cat([priors[:, :2] - half, priors[:, :2] + half], dim=1)
    ious = pairwise_iou(gt, anchors)  # [G, N]
    gt_centre = (gt[:, :2] + gt[:, 2:]) / 2
    distance = torch.cdist(gt_centre, priors[:, :2])  # [G, N]
    if levels is None:
        levels = prior_levels(priors)
    candidates = []
    for level in levels:
        k = min(topk, len(level))
        candidates.append(level[distance[:, level].topk(k, dim=1, largest=False).indices])
    candidates = torch.cat(candidates, dim=1)  # [G, K]
    candidate_iou = ious.gather(1, candidates)
    threshold = candidate_iou.mean(1, keepdim=True) + (
        candidate_iou.std(1, keepdim=True) if candidates.shape[1] > 1 else 0.0
    )
    keep = candidate_iou >= threshold
    if centre_inside:
        points = priors[candidates, :2]  # [G, K, 2]
        inside = torch.cat([points - gt[:, None, :2], gt[:, None, 2:] - points], dim=2).amin(2) > 0
        keep &= inside
    positive_iou = torch.full_like(ious, -1.0)
    positive_iou.scatter_(1, candidates, torch.where(keep, candidate_iou, torch.full_like(candidate_iou, -1.0)))
    best_iou, best_gt = positive_iou.max(0)
    assigned = torch.where(best_iou >= 0, best_gt, assigned)
    for g in range(gt.shape[0]):  # fallback for faces with no positive (rare: tiny or cut-off faces)
        if not (assigned == g).any():
            assigned[candidates[g, candidate_iou[g].argmax()]] = g
    return assigned, assigned >= 0


def prior_levels(priors: torch.Tensor) -> list[torch.Tensor]:
    """The indices of the priors of each stride, [N, 3] (cx, cy, stride) -> one index tensor per level."""
    return [torch.nonzero(priors[:, 2] == stride).squeeze(1) for stride in torch.unique(priors[:, 2])]


def _points_of(target: dict, faces: torch.Tensor, count: int, scale: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[P, 5, 3] the points (x, y in pixels, v) of the faces ``faces`` indexes; v 0 for faces without."""
    points = target.get("landmarks")
    if points is None or points.numel() == 0:
        return torch.zeros(len(faces), NUM_KEYPOINTS, 3, dtype=like.dtype, device=like.device)
    points = points.to(like).reshape(count, NUM_KEYPOINTS, 3)[faces]
    return torch.cat([points[..., :2] * scale[:2], points[..., 2:]], dim=-1)


def _inside_any(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """[N, 2] points, [M, 4] boxes -> [N] bool: the point lies inside at least one box."""
    lo, hi = boxes[None, :, :2], boxes[None, :, 2:]
    return ((points[:, None] >= lo) & (points[:, None] <= hi)).all(-1).any(1)


def landmark_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, kind: str = "smooth_l1"
) -> torch.Tensor:
    """Weighted landmark regression over P positives: pred and target [P, 10] offsets (in strides),
    mask [P, 10] (1 where the point is labelled), weight [P] (each positive's quality, detached).

    sum_p weight_p * sum_k mask_pk * l(pred_pk - target_pk) / sum_p weight_p, l SmoothL1 (beta 1/9,
    SCRFD) or Wing (w 10, epsilon 2, YOLO5Face); exactly 0 (still in the graph) with no labelled point.
    """
    if kind not in LANDMARK_LOSSES:
        raise ValueError(f"config key 'loss.landmark_loss' = {kind!r}: expected one of {LANDMARK_LOSSES}")
    if not bool(mask.any()):
        return pred.sum() * 0.0
    error = (pred - target).abs()
    if kind == "smooth_l1":
        per = torch.where(error < SMOOTH_L1_BETA, 0.5 * error.pow(2) / SMOOTH_L1_BETA, error - 0.5 * SMOOTH_L1_BETA)
    else:
        c = WING_WIDTH - WING_WIDTH * math.log(1 + WING_WIDTH / WING_CURVATURE)
        per = torch.where(error < WING_WIDTH, WING_WIDTH * torch.log1p(error / WING_CURVATURE), error - c)
    weighted = (per * mask).sum(1) * weight
    counted = weight * mask.any(1).to(weight)
    return weighted.sum() / counted.sum().clamp(min=_EPS)


class DenseLoss(nn.Module):
    """total = face_weight * face-ness + box_weight * box, both summed and divided by the number of
    positive priors in the batch (at least 1).

    Assignment: ATSS on the network's prior points (see [`atss_assign`][]): per face the nearest
    ``topk`` points of every level are candidates and those whose anchor IoU beats the mean + std
    of the candidates' IoUs (and lie inside the face) become positives; no hand-set IoU threshold.

    face-ness (``face_loss``), over every prior of every image:
      ``qfl``: quality focal loss (GFL / SCRFD): the target of a positive is the IoU of its predicted
      box with its face (detached), 0 elsewhere; BCE scaled by |sigmoid(x) - target|^gamma, so the
      score learns to rank boxes by fit (good for AP@[.5:.95] and NMS);
      ``focal``: sigmoid focal loss (RetinaNet) with binary targets, ``alpha`` and ``gamma``.
    box: 1 - ``iou_type`` (iou / giou / diou / eiou) between the decoded box and its face, over the
    positives only. An image with no face has no positive: its box term is exactly 0 and face-ness
    pushes all its scores down. ``targets[i]["ignore"]`` (optional, [M, 4]): ignore regions (faces too
    small to learn); background points inside one add no face-ness term.

    landmarks (when the network predicts them): [`landmark_loss`][] over the positives whose face
    has labelled points (``targets[i]["landmarks"]``: [N, 5, 3] (x, y, v) normalised, v > 0 labelled;
    absent or v all 0: the face has none and adds nothing), targets the offsets of the points from
    the prior in strides, each positive weighted by its detached face score (SCRFD), times
    ``landmark_weight``. A batch without landmarks has a landmark term of exactly 0.
    """

    def __init__(
        self,
        face_weight: float = 1.0,
        box_weight: float = 2.0,
        face_loss: str = "qfl",
        gamma: float = 2.0,
        alpha: float = 0.25,
        iou_type: str = "giou",
        topk: int = 9,
        anchor_scale: float = 4.0,
        centre_inside: bool = True,
        landmark_weight: float = 0.1,
        landmark_loss: str = "smooth_l1",
    ) -> None:
        super().__init__()
        if landmark_loss not in LANDMARK_LOSSES:
            raise ValueError(f"config key 'loss.landmark_loss' = {landmark_loss!r}: expected one of {LANDMARK_LOSSES}")
        self.landmark_weight, self.landmark_loss = float(landmark_weight), landmark_loss
        if face_loss not in FACE_LOSSES:
            raise ValueError(f"config key 'loss.face_loss' = {face_loss!r}: expected one of {FACE_LOSSES}")
        if iou_type not in IOU_TYPES:
            raise ValueError(f"config key 'loss.iou_type' = {iou_type!r}: expected one of {IOU_TYPES}")
        self.face_weight, self.box_weight, self.face_loss = face_weight, box_weight, face_loss
        self.gamma, self.alpha, self.iou_type = gamma, alpha, iou_type
        self.topk, self.anchor_scale, self.centre_inside = topk, anchor_scale, centre_inside

    def forward(
        self, outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """``outputs``: DenseNet.forward's dict; ``targets[i]["boxes"]``: FloatTensor[N, 4] normalised (x1, y1, x2, y2)."""
        logits, raw, priors = outputs["face_logit"], outputs["box"], outputs["priors"]
        scale = outputs["size"].repeat(2)
        pred_boxes = DenseNet.boxes_in_pixels(raw, priors)  # [B, N, 4] pixels
        face_target = torch.zeros_like(logits)
        counted = torch.ones_like(logits)  # 0 for background points inside an ignore region
        pred_pos, true_pos, true_points = [], [], []
        levels = prior_levels(priors)
        with torch.no_grad():
            for i, target in enumerate(targets):
                gt = target["boxes"].to(logits).reshape(-1, 4) * scale
                assigned, positive = atss_assign(gt, priors, self.topk, self.anchor_scale, self.centre_inside, levels)
                ignore = target.get("ignore")
                if ignore is not None and ignore.numel():
                    inside = _inside_any(priors[:, :2], ignore.to(logits).reshape(-1, 4) * scale)
                    counted[i] = (~(inside & ~positive)).to(logits)
                if positive.any():
                    index = torch.nonzero(positive).squeeze(1)
                    pred_pos.append((i, index))
                    true_pos.append(gt[assigned[index]])
                    true_points.append(_points_of(target, assigned[index], len(gt), scale, logits))
        num_pos = max(1, sum(len(index) for _, index in pred_pos))
        if pred_pos:
            pred = torch.cat([pred_boxes[i, index] for i, index in pred_pos])
            true = torch.cat(true_pos)
            box = (1 - iou_family(pred, true, self.iou_type)).sum() / num_pos
            quality = iou_family(pred.detach(), true, "iou").clamp(min=0)
            for (i, index), q in zip(pred_pos, torch.split(quality, [len(ix) for _, ix in pred_pos])):
                face_target[i, index] = q if self.face_loss == "qfl" else torch.ones_like(q)
        else:
            box = raw.sum() * 0.0  # exactly 0, still connected to the graph
        face = (self._face(logits, face_target) * counted).sum() / num_pos
        total = self.face_weight * face + self.box_weight * box
        losses = {"face": face.detach(), "box": box.detach()}
        if "landmarks" in outputs:
            marks = self._landmarks(outputs["landmarks"], logits, priors, pred_pos, true_points)
            total = total + self.landmark_weight * marks
            losses["landmarks"] = marks.detach()
        return {"loss": total, **losses}

    def _landmarks(self, raw, logits, priors, pred_pos, true_points) -> torch.Tensor:
        if not pred_pos:
            return raw.sum() * 0.0
        pred = torch.cat([raw[i, index] for i, index in pred_pos])  # [P, 10] offsets in strides
        points = torch.cat(true_points)  # [P, 5, 3] pixels
        prior = torch.cat([priors[index] for _, index in pred_pos])  # [P, 3]
        target = (points[..., :2] - prior[:, None, :2]) / prior[:, None, 2:3]
        mask = (points[..., 2:3] > 0).expand(-1, -1, 2).reshape(len(pred), -1).to(pred)
        weight = torch.cat([torch.sigmoid(logits[i, index]).detach() for i, index in pred_pos])
        return landmark_loss(pred, target.reshape(len(pred), -1), mask, weight, self.landmark_loss)

    def _face(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prob = torch.sigmoid(logits)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if self.face_loss == "qfl":
            return bce * (prob - target).abs().pow(self.gamma)
        p_t = prob * target + (1 - prob) * (1 - target)
        alpha_t = self.alpha * target + (1 - self.alpha) * (1 - target)
        return alpha_t * (1 - p_t).pow(self.gamma) * bce
