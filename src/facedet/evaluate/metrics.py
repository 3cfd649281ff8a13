"""Detection metrics for one-class (face) detectors.

Two families of numbers, computed on the same inputs:

- ``ap50`` / ``ap50_95``: COCO box AP from faster-coco-eval (101-point interpolation, area "all").
  ``maxDets`` is raised above COCO's 100 when an image has more detections, so every detection
  counts, as in :func:`pr_curve`.
- Thresholded numbers (``precision``, ``recall``, ``f1``, ``mean_iou``, ``image_accuracy``, counts):
  detections with ``score >= threshold`` are matched greedily per image, highest score first, each
  to the still-unmatched ground-truth box of highest IoU, if that IoU is ``>= iou_threshold``
  (the same rule COCO uses).

Conventions: a ratio whose denominator is zero is 0.0 (precision with no detection, recall with no
face), except ``mean_iou`` (nan without a match), ``image_accuracy`` (nan without images) and AP
(nan without any ground-truth face, which is COCO's -1).
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np

from facedet.coco import FACE_CATEGORY, Detection, Image, to_coco

__all__ = ["Detection", "box_iou", "detection_metrics", "pr_curve", "best_f1_threshold"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` [N, 4] with every box in ``b`` [M, 4] (x1, y1, x2, y2) -> [N, M]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _check(truth: list[Image], predictions: list[list[Detection]]) -> None:
    if len(truth) != len(predictions):
        raise ValueError(f"{len(truth)} images but {len(predictions)} prediction lists")


def _match_image(gt_boxes, detections: list[Detection], iou_threshold: float):
    """Greedy matching in one image.

    Returns ``(scores, ious)`` in descending score order (stable for ties): ``ious[i]`` is the IoU
    with the matched ground-truth box, or nan when detection ``i`` is a false positive.
    """
    order = sorted(range(len(detections)), key=lambda i: -float(detections[i].score))
    scores = np.array([float(detections[i].score) for i in order], dtype=np.float64)
    matched_iou = np.full(len(order), np.nan)
    if not order or not len(gt_boxes):
        return scores, matched_iou
    ious = box_iou(np.array([detections[i].box for i in order]), np.array(gt_boxes))
    taken = np.zeros(ious.shape[1], dtype=bool)
    for d in range(len(order)):
        candidates = np.where(taken, -1.0, ious[d])
        g = int(np.argmax(candidates))
        if candidates[g] >= iou_threshold:
            taken[g] = True
            matched_iou[d] = ious[d, g]
    return scores, matched_iou


def _all_matches(truth, predictions, iou_threshold):
    """Matches over the whole set: (scores, matched IoU or nan) for every detection, and #GT."""
    scores, ious = [np.zeros(0)], [np.zeros(0)]
    for image, detections in zip(truth, predictions):
        s, m = _match_image(image.boxes, detections, iou_threshold)
        scores.append(s)
        ious.append(m)
    n_gt = sum(len(image.boxes) for image in truth)
    return np.concatenate(scores), np.concatenate(ious), n_gt


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _coco_ap(truth: list[Image], predictions: list[list[Detection]]) -> tuple[float, float]:
    """(AP@0.5, AP@0.5:0.95) from faster-coco-eval; nan where COCO answers -1 (no GT face)."""
    if not truth:
        return math.nan, math.nan
    from faster_coco_eval import COCO, COCOeval_faster

    results = []
    for image_id, detections in enumerate(predictions, start=1):  # ids as in to_coco
        for det in detections:
            x1, y1, x2, y2 = (float(v) for v in det.box)
            results.append({"image_id": image_id, "category_id": FACE_CATEGORY["id"],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(det.score)})
    quiet = lambda *args, **kwargs: None  # noqa: E731
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(to_coco(truth), print_function=quiet)
        dt = gt.loadRes(results)  # an empty list gives an empty, evaluable result set (1.8)
        evaluator = COCOeval_faster(gt, dt, iouType="bbox", print_function=quiet)
        most = max((len(d) for d in predictions), default=0)
        evaluator.params.maxDets = [1, 10, max(100, most)]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ap50_95, ap50 = float(evaluator.stats[0]), float(evaluator.stats[1])
    return tuple(math.nan if v < 0 else v for v in (ap50, ap50_95))


def detection_metrics(truth: list[Image], predictions: list[list[Detection]],
                      threshold: float, iou_threshold: float = 0.5) -> dict[str, float]:
    """COCO AP over all detections plus P/R/F1, mean IoU and image accuracy at ``threshold``."""
    _check(truth, predictions)
    ap50, ap50_95 = _coco_ap(truth, predictions)
    scores, ious, n_gt = _all_matches(truth, predictions, iou_threshold)
    kept = scores >= threshold
    tp = int(np.sum(kept & ~np.isnan(ious)))
    fp = int(np.sum(kept)) - tp
    fn = n_gt - tp
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, n_gt)
    matched = ious[kept & ~np.isnan(ious)]
    agree = [any(float(d.score) >= threshold for d in dets) == bool(image.boxes)
             for image, dets in zip(truth, predictions)]
    return {
        "ap50": ap50,
        "ap50_95": ap50_95,
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "mean_iou": float(matched.mean()) if matched.size else math.nan,
        "image_accuracy": float(np.mean(agree)) if agree else math.nan,
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
        "images": float(len(truth)),
    }


def pr_curve(truth: list[Image], predictions: list[list[Detection]],
             iou_threshold: float = 0.5) -> dict[str, list[float]]:
    """{"threshold": [...], "precision": [...], "recall": [...]} sorted by descending score — one
    point per distinct detection score, using the same greedy matching. Empty lists if no detections.

    The point at threshold ``t`` equals ``detection_metrics(..., threshold=t)``'s precision/recall.
    """
    _check(truth, predictions)
    scores, ious, n_gt = _all_matches(truth, predictions, iou_threshold)
    order = np.argsort(-scores, kind="stable")
    scores, hits = scores[order], ~np.isnan(ious[order])
    tp = np.cumsum(hits)
    seen = np.arange(1, len(scores) + 1)
    last = np.r_[scores[1:] != scores[:-1], True] if len(scores) else np.zeros(0, dtype=bool)
    return {
        "threshold": [float(s) for s in scores[last]],
        "precision": [float(v) for v in tp[last] / seen[last]],
        "recall": [_ratio(v, n_gt) for v in tp[last]],
    }


def best_f1_threshold(curve: dict[str, list[float]]) -> tuple[float, float]:
    """(threshold, f1) maximising F1 on a :func:`pr_curve` dict; the highest threshold wins ties.

    ``(nan, 0.0)`` for an empty curve.
    """
    f1 = [_f1(p, r) for p, r in zip(curve["precision"], curve["recall"])]
    if not f1:
        return math.nan, 0.0
    best = int(np.argmax(f1))
    return float(curve["threshold"][best]), float(f1[best])
