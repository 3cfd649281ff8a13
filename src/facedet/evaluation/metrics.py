"""Detection metrics for one-class (face) detectors.

Two families of numbers, computed on the same inputs:

- ``ap50`` / ``ap50_95``: COCO box AP from faster-coco-eval (101-point interpolation, area "all").
  ``maxDets`` is raised above COCO's 100 when an image has more detections, so every detection
  counts, as in [`pr_curve`][].
- ``ap50_small`` / ``ap50_medium`` / ``ap50_large``: COCO AP@0.5 over COCO's area ranges. COCO
  splits by box AREA, not side: small is area <= 32² px² (1024), medium 32²..96², large >= 96²
  (9216), both ends inclusive as in pycocotools, so a face of exactly 32 x 32 counts in small and
  medium. A 20 x 60 face (area 1200) is medium although its short side is 20. Faces outside the
  range are ignored for that number, and so are unmatched detections outside it (COCO's rule).
- Thresholded numbers (``precision``, ``recall``, ``f1``, ``mean_iou``, ``image_accuracy``, counts):
  detections with ``score >= threshold`` are matched greedily per image, highest score first, each
  to the still-unmatched ground-truth box of highest IoU, if that IoU is ``>= iou_threshold``
  (the same rule COCO uses).
- ``fp_per_negative_image``: false positives at ``threshold`` per negative image (an image with no
  face box; ignore regions do not make an image positive), the mean over negatives.

Ignore regions (``Image.ignore``, COCO ``iscrowd=1``) follow COCO's crowd rule everywhere. A
detection is first matched to faces as above; if no face takes it, it is *ignored* -- neither TP
nor FP, dropped from every count and from [`pr_curve`][] -- when its intersection with some
ignore region covers at least ``iou_threshold`` of the DETECTION's own area. Why this and not IoU:
it is exactly what COCO does for crowd boxes (faster-coco-eval computes crowd "IoU" as intersection
over detection area), so ``ap50`` and the thresholded numbers agree on what an ignore region is; and
an ignore region is often a big box around a crowd of small faces, where a correct small detection
inside it has a tiny IoU with the region but lies wholly within it. Ignore regions are never FN
and never counted as faces. For ``image_accuracy`` an image is a face image when it has at least
one face box (ignore regions alone do not count) and is predicted positive when it has at least
one kept detection that is not ignored, so a detection inside an ignore region of a negative image
does not make that image wrong.

Conventions: a ratio whose denominator is zero is 0.0 (precision with no detection, recall with no
face), except ``mean_iou`` (nan without a match), ``image_accuracy`` (nan without images),
``fp_per_negative_image`` (nan without a negative image) and AP (nan without any ground-truth face
-- for the size APs, without a face of that size -- which is COCO's -1).
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np

from facedet.boxes import box_iou, intersection_over_first
from facedet.coco import FACE_CATEGORY, KEYPOINT_NAMES, Detection, Image, to_coco

__all__ = ["Detection", "box_iou", "detection_metrics", "landmark_metrics", "pr_curve", "best_f1_threshold"]
NME_FAILURE = 0.1  # a face whose NME is above this counts as a failure (RetinaFace's 10 %)


def _check(truth: list[Image], predictions: list[list[Detection]]) -> None:
    if len(truth) != len(predictions):
        raise ValueError(f"{len(truth)} images but {len(predictions)} prediction lists")


def _match_image(gt_boxes, detections: list[Detection], iou_threshold: float, ignore_boxes=()):
    """Greedy matching in one image.

    Returns ``(scores, ious, ignored)`` in descending score order (stable for ties): ``ious[i]`` is
    the IoU with the matched ground-truth box, or nan when detection ``i`` is not matched to a face;
    ``ignored[i]`` is True when an unmatched detection lies in an ignore region (see the module
    docstring) and so is neither TP nor FP.
    """
    order = sorted(range(len(detections)), key=lambda i: -float(detections[i].score))
    scores = np.array([float(detections[i].score) for i in order], dtype=np.float64)
    matched_iou = np.full(len(order), np.nan)
    ignored = np.zeros(len(order), dtype=bool)
    if not order:
        return scores, matched_iou, ignored
    boxes = np.array([detections[i].box for i in order], dtype=np.float64).reshape(-1, 4)
    if len(gt_boxes):
        ious = box_iou(boxes, np.array(gt_boxes))
        taken = np.zeros(ious.shape[1], dtype=bool)
        for d in range(len(order)):
            candidates = np.where(taken, -1.0, ious[d])
            g = int(np.argmax(candidates))
            if candidates[g] >= iou_threshold:
                taken[g] = True
                matched_iou[d] = ious[d, g]
    if len(ignore_boxes):
        covered = intersection_over_first(boxes, np.array(ignore_boxes)).max(axis=1) >= iou_threshold
        ignored = np.isnan(matched_iou) & covered
    return scores, matched_iou, ignored


def _image_matches(truth, predictions, iou_threshold):
    """Per image: (scores, matched IoU or nan, ignored) for its detections, best first."""
    return [
        _match_image(image.boxes, detections, iou_threshold, image.ignore)
        for image, detections in zip(truth, predictions)
    ]


def _all_matches(truth, predictions, iou_threshold):
    """Matches over the whole set, ignored detections dropped: (scores, matched IoU or nan) for
    every detection that counts, and #GT faces (ignore regions excluded)."""
    scores, ious = [np.zeros(0)], [np.zeros(0)]
    for s, m, ignored in _image_matches(truth, predictions, iou_threshold):
        scores.append(s[~ignored])
        ious.append(m[~ignored])
    n_gt = sum(len(image.boxes) for image in truth)
    return np.concatenate(scores), np.concatenate(ious), n_gt


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _coco_ap(truth: list[Image], predictions: list[list[Detection]]) -> dict[str, float]:
    """AP@0.5, AP@0.5:0.95 and AP@0.5 per COCO area range from faster-coco-eval; nan where COCO
    answers -1 (no GT face, or none of that size)."""
    keys = ("ap50", "ap50_95", "ap50_small", "ap50_medium", "ap50_large")
    if not truth:
        return dict.fromkeys(keys, math.nan)
    from faster_coco_eval import COCO, COCOeval_faster

    results = []
    for image_id, detections in enumerate(predictions, start=1):  # ids as in to_coco
        for det in detections:
            x1, y1, x2, y2 = (float(v) for v in det.box)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": FACE_CATEGORY["id"],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(det.score),
                }
            )
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
    values = {"ap50": float(evaluator.stats[1]), "ap50_95": float(evaluator.stats[0])}
    # precision[T, R, K, A, M]: IoU 0.5 is T=0, areas A = all, small, medium, large, M = most dets;
    # averaged over the 101 recall points like COCO's summarize (-1 entries: no GT in that range)
    precision = np.asarray(evaluator.eval["precision"])
    labels = list(evaluator.params.areaRngLbl)
    for size in ("small", "medium", "large"):
        points = precision[0, :, 0, labels.index(size), -1]
        points = points[points > -1]
        values[f"ap50_{size}"] = float(points.mean()) if points.size else -1.0
    return {key: math.nan if values[key] < 0 else values[key] for key in keys}


def detection_metrics(
    truth: list[Image], predictions: list[list[Detection]], threshold: float, iou_threshold: float = 0.5
) -> dict[str, float]:
    """COCO AP over all detections (also by face size) plus P/R/F1, mean IoU, image accuracy and
    false positives per negative image at ``threshold``; ignore regions handled as in the module
    docstring."""
    _check(truth, predictions)
    per_image = _image_matches(truth, predictions, iou_threshold)
    tp = fp = 0
    matched, agree, negative_fp = [], [], []
    for image, (scores, ious, ignored) in zip(truth, per_image):
        counted = (scores >= threshold) & ~ignored
        hits = counted & ~np.isnan(ious)
        tp += int(hits.sum())
        fp += int(counted.sum() - hits.sum())
        matched.append(ious[hits])
        agree.append(bool(counted.any()) == bool(image.boxes))
        if not image.boxes:
            negative_fp.append(int(counted.sum()))  # no face: every counted detection is an FP
    n_gt = sum(len(image.boxes) for image in truth)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, n_gt)
    matched = np.concatenate(matched) if matched else np.zeros(0)
    return {
        **_coco_ap(truth, predictions),
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "mean_iou": float(matched.mean()) if matched.size else math.nan,
        "image_accuracy": float(np.mean(agree)) if agree else math.nan,
        "fp_per_negative_image": float(np.mean(negative_fp)) if negative_fp else math.nan,
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(n_gt - tp),
        "images": float(len(truth)),
    }


def pr_curve(
    truth: list[Image], predictions: list[list[Detection]], iou_threshold: float = 0.5
) -> dict[str, list[float]]:
    """{"threshold": [...], "precision": [...], "recall": [...]} sorted by descending score — one
    point per distinct detection score, using the same greedy matching. Empty lists if no detections.
    Detections in ignore regions are left out (they are neither TP nor FP and make no point).

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
    """(threshold, f1) maximising F1 on a [`pr_curve`][] dict.

    The best point's score is the lowest that still keeps its last true positive; every threshold
    down to the next lower candidate's score gives the same F1 there. The threshold is the middle of
    that gap (the best point's own score when no candidate lies below it), so faces that score a
    little lower than the validation faces are still found. The highest-threshold point wins ties.
    ``(nan, 0.0)`` for an empty curve.
    """
    f1 = [_f1(p, r) for p, r in zip(curve["precision"], curve["recall"])]
    if not f1:
        return math.nan, 0.0
    best = int(np.argmax(f1))
    thresholds = curve["threshold"]
    below = thresholds[best + 1] if best + 1 < len(thresholds) else thresholds[best]
    return float((thresholds[best] + below) / 2), float(f1[best])


def landmark_metrics(
    truth: list[Image], predictions: list[list[Detection]], threshold: float, iou_threshold: float = 0.5
) -> dict[str, float]:
    """Landmark error on the faces that have labelled landmarks and were found: detections scoring at
    least ``threshold`` are matched to faces as in [`detection_metrics`][] (greedy by score, IoU >=
    ``iou_threshold``). A face's NME is the mean distance between its labelled points (v > 0) and the
    predicted ones, divided by sqrt(w x h) of its box (RetinaFace's normalisation).

    Returns ``nme`` (mean over faces), ``nme_<point>`` (per point, mean over the faces where it is
    labelled), ``nme_failure_rate`` (share of faces with NME > 0.1), ``nme_faces`` (faces measured)
    and ``nme_missed`` (faces with landmarks that no detection matched: not in the means). Empty when
    no face has landmarks or the detections carry none (a box-only model).
    """
    _check(truth, predictions)
    per_face, per_point, missed = [], [[] for _ in KEYPOINT_NAMES], 0
    for image, detections in zip(truth, predictions):
        marked = [(box, points) for box, points in zip(image.boxes, image.face_landmarks()) if points is not None]
        if not marked:
            continue
        kept = sorted((d for d in detections if d.score >= threshold), key=lambda d: -float(d.score))
        if kept and kept[0].landmarks is None:
            return {}
        boxes = np.array([box for box, _ in marked], dtype=np.float64)
        taken = np.zeros(len(marked), dtype=bool)
        found: dict[int, Detection] = {}
        if kept:
            ious = box_iou(np.array([d.box for d in kept], dtype=np.float64), boxes)
            for d, detection in enumerate(kept):
                candidates = np.where(taken, -1.0, ious[d])
                g = int(np.argmax(candidates))
                if candidates[g] >= iou_threshold:
                    taken[g] = True
                    found[g] = detection
        for g, (box, points) in enumerate(marked):
            if g not in found:
                missed += 1
                continue
            scale = math.sqrt((box[2] - box[0]) * (box[3] - box[1]))
            errors = [
                (k, math.dist((x, y), found[g].landmarks[k]) / scale) for k, (x, y, v) in enumerate(points) if v > 0
            ]
            per_face.append(float(np.mean([e for _, e in errors])))
            for k, error in errors:
                per_point[k].append(error)
    if not per_face and not missed:
        return {}
    result = {
        "nme": float(np.mean(per_face)) if per_face else math.nan,
        **{f"nme_{name}": float(np.mean(e)) if e else math.nan for name, e in zip(KEYPOINT_NAMES, per_point)},
        "nme_failure_rate": float(np.mean(np.array(per_face) > NME_FAILURE)) if per_face else math.nan,
        "nme_faces": float(len(per_face)),
        "nme_missed": float(missed),
    }
    return result
