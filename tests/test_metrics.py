"""Metrics on hand-built cases; every expected value is worked out in the comments."""

import math

import numpy as np
import pytest

from facedet.coco import Image
from facedet.evaluate.metrics import (Detection, best_f1_threshold, box_iou, detection_metrics,
                                      pr_curve)


def test_box_iou_by_hand():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    # [0,0,10,10] vs [5,0,15,10]: inter 5*10 = 50, union 100 + 100 - 50 = 150 -> 1/3
    assert iou[0, 0] == pytest.approx(1 / 3)
    assert iou[0, 1] == 0.0  # disjoint
    assert iou[0, 2] == pytest.approx(1.0)
    # [0,0,2,2] inside [0,0,10,10]: 4 / 100
    assert iou[1, 2] == pytest.approx(0.04)


def test_box_iou_empty_and_degenerate():
    assert box_iou(np.zeros((0, 4)), np.zeros((2, 4))).shape == (0, 2)
    # two zero-area boxes: union 0 -> 0, not nan
    assert box_iou(np.array([[1, 1, 1, 1]]), np.array([[1, 1, 1, 1]]))[0, 0] == 0.0


def test_perfect_predictions():
    truth = [Image("a.jpg", 200, 100, [(10, 10, 50, 60), (100, 20, 180, 90)]),
             Image("b.jpg", 64, 64, [(0, 0, 32, 32)]),
             Image("neg.jpg", 64, 64, [])]
    predictions = [[Detection(box, 0.9) for box in image.boxes] for image in truth]
    m = detection_metrics(truth, predictions, threshold=0.5)
    assert m["ap50"] == pytest.approx(1.0)
    assert m["ap50_95"] == pytest.approx(1.0)
    assert m["precision"] == m["recall"] == m["f1"] == pytest.approx(1.0)
    assert m["mean_iou"] == pytest.approx(1.0)
    assert m["image_accuracy"] == pytest.approx(1.0)
    assert (m["tp"], m["fp"], m["fn"], m["images"]) == (3, 0, 0, 3)


def hand_case():
    truth = [
        # A: two faces, both found at >= 0.5, plus a low-score miss that the threshold drops
        Image("A.jpg", 100, 100, [(0, 0, 10, 10), (50, 50, 70, 70)]),
        # B: one face, only a wrong low-score detection -> FN, image disagrees
        Image("B.jpg", 100, 100, [(10, 10, 30, 30)]),
        # C: negative with a confident false positive -> FP, image disagrees
        Image("C.jpg", 100, 100, []),
        # D: negative, nothing detected -> image agrees
        Image("D.jpg", 100, 100, []),
    ]
    predictions = [
        [Detection((0, 0, 10, 10), 0.9),      # IoU 1 with the first face
         # vs (50,50,70,70): inter 15*20 = 300, union 400 + 400 - 300 = 500 -> IoU 0.6
         Detection((55, 50, 75, 70), 0.8),
         Detection((20, 20, 30, 30), 0.3)],   # below threshold
        [Detection((40, 40, 60, 60), 0.2)],   # below threshold
        [Detection((0, 0, 20, 20), 0.7)],
        [],
    ]
    return truth, predictions


def test_hand_case_at_threshold():
    truth, predictions = hand_case()
    m = detection_metrics(truth, predictions, threshold=0.5)
    # kept: A .9 (TP), A .8 (TP), C .7 (FP); B's face unmatched (FN)
    assert (m["tp"], m["fp"], m["fn"], m["images"]) == (2, 1, 1, 4)
    assert m["precision"] == pytest.approx(2 / 3)   # 2 / (2 + 1)
    assert m["recall"] == pytest.approx(2 / 3)      # 2 / 3 faces
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["mean_iou"] == pytest.approx(0.8)      # (1.0 + 0.6) / 2
    assert m["image_accuracy"] == pytest.approx(0.5)  # A and D agree, B and C do not


def test_each_face_matched_once_and_highest_score_first():
    truth = [Image("a.jpg", 100, 100, [(0, 0, 10, 10)])]
    # .9 is box (0,0,10,6): inter 60, union 100 + 60 - 60 = 100 -> IoU 0.6; taken first by score.
    # .8 is a perfect box but the face is already taken -> FP.
    predictions = [[Detection((0, 0, 10, 10), 0.8), Detection((0, 0, 10, 6), 0.9)]]
    m = detection_metrics(truth, predictions, threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 0)
    assert m["mean_iou"] == pytest.approx(0.6)
    # IoU 0.6 misses at iou_threshold 0.7; then the perfect box gets the face
    m = detection_metrics(truth, predictions, threshold=0.5, iou_threshold=0.7)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 0)
    assert m["mean_iou"] == pytest.approx(1.0)


def ap_case():
    truth = [Image("a.jpg", 100, 100, [(0, 0, 10, 10), (50, 50, 60, 60)])]
    predictions = [[Detection((0, 0, 10, 10), 0.9),     # TP
                    Detection((20, 20, 30, 30), 0.8),   # FP
                    Detection((50, 50, 60, 60), 0.7)]]  # TP
    return truth, predictions


def test_ap50_hand_case():
    truth, predictions = ap_case()
    m = detection_metrics(truth, predictions, threshold=0.5)
    # ranked: TP (P 1, R .5), FP (P .5, R .5), TP (P 2/3, R 1)
    # envelope: 1.0 for recall 0..0.5 (51 of the 101 points), 2/3 for 0.51..1.0 (50 points)
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101  # 0.834983...
    assert m["ap50"] == pytest.approx(expected, abs=1e-3)
    # both TPs have IoU 1, so every IoU threshold up to .95 gives the same AP
    assert m["ap50_95"] == pytest.approx(expected, abs=1e-3)


def test_more_than_100_detections_per_image_count():
    # 150 faces on a 15 x 10 lattice, all detected exactly. With COCO's maxDets=100 recall would
    # stop at 100/150 and AP50 would be about 0.67; every detection must count -> 1.0.
    boxes = [(20 * i, 20 * j, 20 * i + 10, 20 * j + 10) for i in range(15) for j in range(10)]
    truth = [Image("crowd.jpg", 300, 200, boxes)]
    predictions = [[Detection(b, 0.5 + k / 1000) for k, b in enumerate(boxes)]]
    m = detection_metrics(truth, predictions, threshold=0.5)
    assert m["ap50"] == pytest.approx(1.0)
    assert m["recall"] == pytest.approx(1.0)


def test_no_detections():
    truth, _ = hand_case()
    m = detection_metrics(truth, [[] for _ in truth], threshold=0.5)
    assert m["ap50"] == 0.0 and m["ap50_95"] == 0.0
    assert m["recall"] == 0.0 and m["precision"] == 0.0 and m["f1"] == 0.0
    assert (m["tp"], m["fp"], m["fn"]) == (0, 0, 3)
    assert math.isnan(m["mean_iou"])
    assert m["image_accuracy"] == pytest.approx(0.5)  # the two negatives agree, A and B do not


def test_no_ground_truth():
    truth = [Image("n1.jpg", 50, 50, []), Image("n2.jpg", 50, 50, [])]
    m = detection_metrics(truth, [[], []], threshold=0.5)
    assert math.isnan(m["ap50"]) and math.isnan(m["ap50_95"])  # COCO's -1
    assert m["image_accuracy"] == 1.0
    assert (m["tp"], m["fp"], m["fn"]) == (0, 0, 0)
    # one confident false positive: AP still undefined, one image in two now wrong
    m = detection_metrics(truth, [[Detection((0, 0, 5, 5), 0.9)], []], threshold=0.5)
    assert math.isnan(m["ap50"])
    assert m["fp"] == 1 and m["image_accuracy"] == 0.5


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        detection_metrics([Image("a.jpg", 10, 10, [])], [], threshold=0.5)


def test_pr_curve_and_best_f1_by_hand():
    truth, predictions = ap_case()
    curve = pr_curve(truth, predictions)
    assert curve["threshold"] == pytest.approx([0.9, 0.8, 0.7])
    assert curve["precision"] == pytest.approx([1.0, 0.5, 2 / 3])
    assert curve["recall"] == pytest.approx([0.5, 0.5, 1.0])
    assert all(b >= a for a, b in zip(curve["recall"], curve["recall"][1:]))
    # F1: .9 -> 2*1*.5/1.5 = 2/3; .8 -> .5; .7 -> 2*(2/3)*1/(5/3) = 0.8
    threshold, f1 = best_f1_threshold(curve)
    assert threshold == pytest.approx(0.7)
    assert f1 == pytest.approx(0.8)


def test_pr_curve_agrees_with_detection_metrics():
    truth, predictions = hand_case()
    curve = pr_curve(truth, predictions)
    # distinct scores .9 .8 .7 .3 .2, descending
    assert curve["threshold"] == pytest.approx([0.9, 0.8, 0.7, 0.3, 0.2])
    for t, p, r in zip(curve["threshold"], curve["precision"], curve["recall"]):
        m = detection_metrics(truth, predictions, threshold=t)
        assert (m["precision"], m["recall"]) == pytest.approx((p, r))
    assert all(b >= a for a, b in zip(curve["recall"], curve["recall"][1:]))


def test_pr_curve_ties_give_one_point_and_empty_curve():
    truth = [Image("a.jpg", 100, 100, [(0, 0, 10, 10)])]
    curve = pr_curve(truth, [[Detection((0, 0, 10, 10), 0.5), Detection((50, 50, 60, 60), 0.5)]])
    # one point at 0.5: 1 TP of 2 detections, 1 of 1 face
    assert curve == {"threshold": [0.5], "precision": [0.5], "recall": [1.0]}
    empty = pr_curve(truth, [[]])
    assert empty == {"threshold": [], "precision": [], "recall": []}
    threshold, f1 = best_f1_threshold(empty)
    assert math.isnan(threshold) and f1 == 0.0
