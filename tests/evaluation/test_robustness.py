"""Perturbations on hand cases, and the robustness report on a stand-in detector."""

import math

import cv2
import numpy as np
import pytest

from facedet.coco import Detection, Image
from facedet.evaluation.robustness import (
    PERTURBATIONS,
    _perturb_truth,
    plot_robustness,
    robustness_report,
    rotate_boxes,
)

S30, C30 = 0.5, math.sqrt(3) / 2


def close(actual, expected, atol=1e-9):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=0, atol=atol)


def test_perturbation_names():
    assert set(PERTURBATIONS) == {
        "original",
        "darker",
        "brighter",
        "rotate_ccw15",
        "rotate_cw15",
        "rotate_ccw30",
        "rotate_cw30",
        "blur",
        "jpeg_q10",
    }
    assert next(iter(PERTURBATIONS)) == "original"


def test_rotated_boxes_by_hand():
    # centred 40 x 40 square in a 100 x 100 image, centre (50, 50): the inscribed circle turns into
    # itself -> half-width sqrt((20 cos)² + (20 sin)²) = 20 at any angle -> the same box
    for name in ("rotate_ccw15", "rotate_cw15", "rotate_ccw30", "rotate_cw30"):
        _, boxes = PERTURBATIONS[name](np.zeros((100, 100, 3), np.uint8), [(30, 30, 70, 70)])
        close(boxes, [[30, 30, 70, 70]])
    # centred 40 x 20 box (30,40,70,60) at ±30°: half-width sqrt((20 * .866)² + (10 * .5)²)
    # = sqrt(300 + 25) = sqrt(325) = 18.03, half-height sqrt((20 * .5)² + (10 * .866)²)
    # = sqrt(100 + 75) = sqrt(175) = 13.23
    hw, hh = math.sqrt(325), math.sqrt(175)
    for degrees in (30, -30):
        close(rotate_boxes([(30, 40, 70, 60)], 100, 100, degrees), [[50 - hw, 50 - hh, 50 + hw, 50 + hh]])
    # 20 x 20 box centred at (70, 50), 20 px right of the image centre. +30° is counter-clockwise
    # on screen: the centre goes to (50 + 20 cos 30°, 50 - 20 sin 30°) = (67.32, 40), size kept
    cx = 50 + 20 * C30
    close(rotate_boxes([(60, 40, 80, 60)], 100, 100, 30), [[cx - 10, 30, cx + 10, 50]])
    # -30°: clockwise, the centre goes down to (67.32, 60)
    close(rotate_boxes([(60, 40, 80, 60)], 100, 100, -30), [[cx - 10, 50, cx + 10, 70]])


def test_rotation_moves_the_image_like_the_boxes():
    # a filled ellipse, centre (140, 60), semi-axes 20 x 12, in a 200 x 160 image: it covers pixel
    # columns 120..160 and rows 48..72 -> continuous box (120, 48, 161, 73)
    image = np.zeros((160, 200, 3), np.uint8)
    cv2.ellipse(image, (140, 60), (20, 12), 0, 0, 360, (255, 255, 255), -1)
    for name in ("rotate_ccw15", "rotate_cw15", "rotate_ccw30", "rotate_cw30"):
        rotated, boxes = PERTURBATIONS[name](image, [(120, 48, 161, 73)])
        ys, xs = np.nonzero(rotated[:, :, 0] > 127)
        blob = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert rotated.shape == image.shape
        close(boxes[0], blob, atol=1.0)  # measured within 0.7 px


def test_boxes_cut_by_the_frame():
    # box (0,0,20,20), centre (10,10) = (-40, -40) from the centre of a 100 x 100 image. At +30°:
    # x = 50 - 40 cos + (-40) sin = 50 - 34.64 - 20 = -4.64, y = 50 + 40 sin - 40 cos = 35.36;
    # half sizes 10 -> (-14.64, 25.36, 5.36, 45.36), clipped to (0, 25.36, 5.36, 45.36)
    low = 50 - 40 * C30 + 40 * S30 - 10
    _, boxes = PERTURBATIONS["rotate_ccw30"](np.zeros((100, 100, 3), np.uint8), [(0, 0, 20, 20)])
    close(boxes, [[0, low, 5.36, low + 20]], atol=0.01)
    # 5.36 of its 20 px width stay in the frame (27 % of the box < 50 %): in the report's ground
    # truth the face becomes an ignore region, while a centred face stays a face
    truth = Image("a.jpg", 100, 100, [(0, 0, 20, 20), (40, 40, 60, 60)])
    moved = _perturb_truth(PERTURBATIONS["rotate_ccw30"], truth, 100, 100)
    close(moved.boxes, [(40, 40, 60, 60)])
    close(moved.ignore, [(0, low, 5.36, low + 20)], atol=0.01)
    # a box rotated wholly out of the frame is dropped: (0,0,4,4) centre (-48, -48) from the centre
    # -> x = 50 - 41.57 - 24 = -15.57 ± 2 -> entirely left of x = 0
    _, boxes = PERTURBATIONS["rotate_ccw30"](np.zeros((100, 100, 3), np.uint8), [(0, 0, 4, 4)])
    assert boxes.shape == (0, 4)


def test_photometric_perturbations_by_hand():
    image = np.array([[[200, 30, 0], [55, 255, 100]]], np.uint8)  # 1 x 2 RGB
    box = [(0, 0, 2, 1)]
    dark, boxes = PERTURBATIONS["darker"](image, box)
    assert dark.tolist() == [[[100, 15, 0], [28, 128, 50]]]  # v / 2: 27.5 and 127.5 round to even
    assert boxes.tolist() == [[0, 0, 2, 1]]
    bright, _ = PERTURBATIONS["brighter"](image, box)
    # 255 - (255 - v) / 2: 200 -> 227.5 -> 228, 30 -> 142.5 -> 142, 0 -> 127.5 -> 128,
    # 55 -> 155, 255 -> 255, 100 -> 177.5 -> 178 (halves round to even)
    assert bright.tolist() == [[[228, 142, 128], [155, 255, 178]]]
    original, boxes = PERTURBATIONS["original"](image, box)
    assert np.array_equal(original, image) and boxes.tolist() == [[0, 0, 2, 1]]


def test_blur_and_jpeg_keep_boxes_and_are_deterministic():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    box = [(10, 10, 30, 40)]
    for name in ("blur", "jpeg_q10"):
        first, boxes = PERTURBATIONS[name](image, box)
        second, _ = PERTURBATIONS[name](image, box)
        assert first.shape == image.shape and first.dtype == np.uint8
        assert np.array_equal(first, second)
        assert boxes.tolist() == [[10, 10, 30, 40]]
        assert not np.array_equal(first, image)
    # blur smooths noise: sigma max(1, 0.005 * 96) = 1 px cuts the pixel-to-pixel spread a lot
    blurred, _ = PERTURBATIONS["blur"](image, box)
    assert np.abs(np.diff(blurred.astype(int), axis=1)).mean() < 0.5 * np.abs(np.diff(image.astype(int), axis=1)).mean()


class BlobDetector:
    """Stand-in detector for the report test: the bright blobs of the image, score 1. The thing
    under test is the report (and that image and boxes move together), not a detector."""

    threshold = 0.5

    def __call__(self, rgb):
        gray = rgb.astype(np.float32).mean(axis=2)
        mask = (gray > (gray.min() + gray.max()) / 2).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [
            Detection((float(x), float(y), float(x + w), float(y + h)), 1.0)
            for x, y, w, h, area in stats[1:]
            if area >= 20
        ]


def blob_images():
    """Two images with filled ellipses ("faces") and a negative; truth = each ellipse's pixel box."""
    images, truth = [], []
    for name, faces in (
        ("a.jpg", [((60, 60), (15, 22)), ((140, 100), (20, 20))]),
        ("b.jpg", [((100, 80), (25, 15))]),
        ("neg.jpg", []),
    ):
        image = np.full((160, 200, 3), 0, np.uint8)
        boxes = []
        for (cx, cy), (a, b) in faces:
            cv2.ellipse(image, (cx, cy), (a, b), 0, 0, 360, (255, 255, 255), -1)
            boxes.append((cx - a, cy - b, cx + a + 1, cy + b + 1))
        images.append(image)
        truth.append(Image(name, 200, 160, boxes))
    return images, truth


def test_robustness_report_with_a_detector_that_finds_every_face():
    images, truth = blob_images()
    rows = robustness_report(BlobDetector(), images, truth)
    assert [row["name"] for row in rows] == list(PERTURBATIONS)
    for row in rows:
        # every face found with score 1 at IoU >= .5, nothing else -> AP 1, recall 1
        assert row["ap50"] == pytest.approx(1.0), row
        assert row["recall"] == pytest.approx(1.0) and row["precision"] == pytest.approx(1.0), row
        assert row["faces"] == 3


def test_robustness_report_uses_detect_batch_at_threshold_zero():
    class Batched:
        threshold = 0.7

        def __init__(self):
            self.thresholds = []

        def detect_batch(self, images, threshold=None):
            self.thresholds.append(threshold)
            # a perfect box at .6: below the detector's .7 -> recall 0, but it counts for AP
            return [[Detection((20, 20, 40, 40), 0.6)] for _ in images]

    detector = Batched()
    rows = robustness_report(detector, [np.zeros((60, 60, 3), np.uint8)], [Image("a.jpg", 60, 60, [(20, 20, 40, 40)])])
    assert set(detector.thresholds) == {0.0} and len(detector.thresholds) == len(PERTURBATIONS)
    assert rows[0]["ap50"] == pytest.approx(1.0) and rows[0]["recall"] == 0.0
    with pytest.raises(ValueError):
        robustness_report(detector, [], [Image("a.jpg", 60, 60, [])])


def test_plot_robustness(tmp_path):
    rows = [{"name": name, "ap50": 1.0 - k / 20, "recall": 0.9 - k / 20} for k, name in enumerate(PERTURBATIONS)]
    rows[-1]["ap50"] = math.nan  # no face: drawn as "n/a", no crash
    path = tmp_path / "sub" / "robustness.png"
    plot_robustness(rows, path, title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cv2.imread(str(path)).shape == (400, 800, 3)
