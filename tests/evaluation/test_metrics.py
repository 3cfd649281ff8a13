"""Metrics on hand-built cases; every expected value is worked out in the comments."""

import math

import numpy as np
import pytest

from facedet.coco import Image
from facedet.evaluation.metrics import Detection, best_f1_threshold, box_iou, detection_metrics, pr_curve


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
    truth = [
        Image("a.jpg", 200, 100, [(10, 10, 50, 60), (100, 20, 180, 90)]),
        Image("b.jpg", 64, 64, [(0, 0, 32, 32)]),
        Image("neg.jpg", 64, 64, []),
    ]
    predictions = [[Detection(box, 0.9) for box in image.boxes] for image in truth]
    m = detection_metrics(truth, predictions, threshold=0.5)
    assert m["ap50"] == pytest.approx(1.0)
    assert m["ap50_95"] == pytest.approx(1.0)
    assert m["precision"] == m["recall"] == m["f1"] == pytest.approx(1.0)
    assert m["mean_iou"] == pytest.approx(1.0)
    assert m["image_accuracy"] == pytest.approx(1.0)
    assert (m["tp"], m["fp"], m["fn"], m["images"]) == (3, 0, 0, 3)
    # areas 40*50 = 2000 and 80*70 = 5600 are medium; 32*32 = 1024 is on the small/medium border,
    # which COCO counts in both; no face has area >= 96² -> large is nan
    assert m["ap50_small"] == pytest.approx(1.0) and m["ap50_medium"] == pytest.approx(1.0)
    assert math.isnan(m["ap50_large"])
    assert m["fp_per_negative_image"] == 0.0  # neg.jpg, nothing detected


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
        [
            Detection((0, 0, 10, 10), 0.9),  # IoU 1 with the first face
            # vs (50,50,70,70): inter 15*20 = 300, union 400 + 400 - 300 = 500 -> IoU 0.6
            Detection((55, 50, 75, 70), 0.8),
            Detection((20, 20, 30, 30), 0.3),
        ],  # below threshold
        [Detection((40, 40, 60, 60), 0.2)],  # below threshold
        [Detection((0, 0, 20, 20), 0.7)],
        [],
    ]
    return truth, predictions


def test_hand_case_at_threshold():
    truth, predictions = hand_case()
    m = detection_metrics(truth, predictions, threshold=0.5)
    # kept: A .9 (TP), A .8 (TP), C .7 (FP); B's face unmatched (FN)
    assert (m["tp"], m["fp"], m["fn"], m["images"]) == (2, 1, 1, 4)
    assert m["precision"] == pytest.approx(2 / 3)  # 2 / (2 + 1)
    assert m["recall"] == pytest.approx(2 / 3)  # 2 / 3 faces
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["mean_iou"] == pytest.approx(0.8)  # (1.0 + 0.6) / 2
    assert m["image_accuracy"] == pytest.approx(0.5)  # A and D agree, B and C do not
    assert m["fp_per_negative_image"] == pytest.approx(0.5)  # C has 1 FP, D has 0 -> 1 / 2


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
    predictions = [
        [
            Detection((0, 0, 10, 10), 0.9),  # TP
            Detection((20, 20, 30, 30), 0.8),  # FP
            Detection((50, 50, 60, 60), 0.7),
        ]
    ]  # TP
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


def test_best_f1_threshold_is_the_middle_of_the_gap_below_the_best_point():
    # F1 at .9: 2*1*.5/1.5 = 2/3; at .6: 1 (both faces, no false positive); at .2: 2*.5*1/1.5 = 2/3.
    # Every threshold in (.2, .6] keeps F1 = 1 on this split: the middle, .4, is taken.
    curve = {"threshold": [0.9, 0.6, 0.2], "precision": [1.0, 1.0, 0.5], "recall": [0.5, 1.0, 1.0]}
    assert best_f1_threshold(curve) == pytest.approx((0.4, 1.0))


# --- ignore regions (COCO iscrowd=1) -------------------------------------------------------------


def ignore_case():
    truth = [
        Image("face_and_crowd.jpg", 100, 100, [(0, 0, 10, 10)], ignore=[(50, 50, 100, 100)]),
        Image("crowd_only.jpg", 100, 100, [], ignore=[(0, 0, 50, 50)]),
        Image("negative.jpg", 100, 100, []),
    ]
    predictions = [
        [
            Detection((0, 0, 10, 10), 0.9),  # TP on the face
            # wholly inside the ignore region: IoU with it only 100 / 2500 = 0.04, but it covers 100 %
            # of the detection's area -> ignored (it is the best score: as an FP it would cost AP)
            Detection((60, 60, 70, 70), 0.95),
            # intersection with the region x 50..55, y 50..60 = 50 of its 100 px² = exactly 0.5 -> ignored
            Detection((45, 50, 55, 60), 0.6),
            # intersection x 50..60, y 50..60 = 100 of its 400 px² = 0.25 -> FP
            Detection((40, 40, 60, 60), 0.7),
        ],
        [Detection((10, 10, 20, 20), 0.8)],  # inside the crowd-only image's region -> ignored
        [Detection((0, 0, 5, 5), 0.55)],  # FP on a true negative
    ]
    return truth, predictions


def test_ignore_regions_at_threshold():
    truth, predictions = ignore_case()
    m = detection_metrics(truth, predictions, threshold=0.5)
    # counted at >= 0.5: .9 TP, .7 FP, .55 FP; .95, .6 and .8 ignored; the two ignore regions are no FN
    assert (m["tp"], m["fp"], m["fn"]) == (1, 2, 0)
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(1.0)
    assert m["mean_iou"] == pytest.approx(1.0)
    # face_and_crowd: face image, a counted detection -> agrees; crowd_only: not a face image, its
    # only detection is ignored -> agrees; negative: FP -> disagrees => 2 / 3
    assert m["image_accuracy"] == pytest.approx(2 / 3)
    # negatives are crowd_only (0 FP) and negative (1 FP) -> 0.5
    assert m["fp_per_negative_image"] == pytest.approx(0.5)
    # at 0.75 only .9 (TP) and the ignored .95 and .8 pass: no FP anywhere, every image agrees
    m = detection_metrics(truth, predictions, threshold=0.75)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 0)
    assert m["precision"] == 1.0 and m["image_accuracy"] == 1.0 and m["fp_per_negative_image"] == 0.0


def test_ignore_regions_leave_coco_ap_and_pr_curve_unchanged():
    truth, predictions = ignore_case()
    # ranked without the ignored ones: .9 TP, .7 FP, .55 FP -> precision 1 up to recall 1 -> AP 1
    assert detection_metrics(truth, predictions, threshold=0.5)["ap50"] == pytest.approx(1.0)
    only_face = [[predictions[0][0]], [], []]
    assert detection_metrics(truth, only_face, threshold=0.5)["ap50"] == pytest.approx(1.0)
    # control: the same .95 box NOT on an ignore region is an FP ranked first: precision 0 then
    # 1/2 at recall 1 -> the envelope is 0.5 at every recall point -> AP 0.5
    moved = [[Detection((20, 20, 30, 30), 0.95), predictions[0][0]], [], []]
    assert detection_metrics(truth, moved, threshold=0.5)["ap50"] == pytest.approx(0.5)
    # the curve has no point for an ignored detection: .9 (P 1), .7 (P 1/2), .55 (P 1/3), R 1
    curve = pr_curve(truth, predictions)
    assert curve["threshold"] == pytest.approx([0.9, 0.7, 0.55])
    assert curve["precision"] == pytest.approx([1.0, 0.5, 1 / 3])
    assert curve["recall"] == pytest.approx([1.0, 1.0, 1.0])


def test_detection_on_face_is_not_ignored_and_face_image_needs_a_counted_detection():
    # face (0,0,20,20) inside an ignore region (0,0,100,100): matching to faces comes first -> TP
    truth = [Image("a.jpg", 100, 100, [(0, 0, 20, 20)], ignore=[(0, 0, 100, 100)])]
    m = detection_metrics(truth, [[Detection((0, 0, 20, 20), 0.9)]], threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 0)
    # only a detection in the ignore region, away from the face: ignored, the face is missed and the
    # face image counts as predicted negative -> wrong
    m = detection_metrics(truth, [[Detection((60, 60, 80, 80), 0.9)]], threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (0, 0, 1)
    assert m["image_accuracy"] == 0.0
    assert math.isnan(m["fp_per_negative_image"])  # no negative image


# --- AP by face size ------------------------------------------------------------------------------


def test_ap50_by_size_hand_case():
    truth = [
        Image(
            "a.jpg",
            200,
            200,
            [
                (0, 0, 10, 10),  # area 100: small
                (50, 50, 90, 90),  # area 1600: medium
                (100, 100, 200, 200),
            ],
        )
    ]  # area 10000: large
    predictions = [
        [
            Detection((0, 0, 10, 10), 0.9),  # small TP
            Detection((150, 0, 190, 40), 0.85),  # FP of area 1600 (medium), touches no face
            Detection((50, 50, 90, 90), 0.8),
        ]
    ]  # medium TP; the large face is missed
    m = detection_metrics(truth, predictions, threshold=0.5)
    # small: only the small face counts and unmatched detections outside the range (the medium FP)
    # are ignored -> TP alone -> 1.0
    assert m["ap50_small"] == pytest.approx(1.0)
    # medium: FP (.85) then TP (.8): precision 1/2 at recall 1, envelope 0.5 at every point -> 0.5
    assert m["ap50_medium"] == pytest.approx(0.5)
    # large: one face, never detected -> 0
    assert m["ap50_large"] == pytest.approx(0.0)
    # all: TP (P 1, R 1/3), FP (P 1/2), TP (P 2/3, R 2/3); 101 recall points: 0..0.33 (34) get 1,
    # 0.34..0.66 (33) get 2/3, 0.67..1 get 0 -> (34 + 33 * 2/3) / 101 = 56 / 101
    assert m["ap50"] == pytest.approx(56 / 101, abs=1e-6)


def test_ap50_by_size_nan_without_faces_of_that_size():
    truth = [Image("a.jpg", 100, 100, [(0, 0, 20, 20)]), Image("n.jpg", 100, 100, [])]
    m = detection_metrics(truth, [[Detection((0, 0, 20, 20), 0.9)], []], threshold=0.5)
    assert m["ap50_small"] == pytest.approx(1.0)  # area 400 < 1024
    assert math.isnan(m["ap50_medium"]) and math.isnan(m["ap50_large"])
    m = detection_metrics([Image("n.jpg", 10, 10, [])], [[]], threshold=0.5)
    assert all(math.isnan(m[k]) for k in ("ap50_small", "ap50_medium", "ap50_large"))
    assert m["fp_per_negative_image"] == 0.0


def test_fp_per_negative_image_counts_only_negatives():
    truth, predictions = ap_case()  # one face image, no negative -> nan
    assert math.isnan(detection_metrics(truth, predictions, threshold=0.5)["fp_per_negative_image"])
    truth = [
        Image("face.jpg", 50, 50, [(0, 0, 10, 10)]),
        Image("n1.jpg", 50, 50, []),
        Image("n2.jpg", 50, 50, []),
        Image("n3.jpg", 50, 50, []),
    ]
    predictions = [
        [Detection((30, 30, 40, 40), 0.9)],  # FP, but not on a negative
        [Detection((0, 0, 5, 5), 0.9), Detection((10, 10, 15, 15), 0.6)],  # 2 FP
        [Detection((0, 0, 5, 5), 0.3)],  # below the threshold
        [],
    ]
    # (2 + 0 + 0) / 3 negatives
    assert detection_metrics(truth, predictions, threshold=0.5)["fp_per_negative_image"] == pytest.approx(2 / 3)
