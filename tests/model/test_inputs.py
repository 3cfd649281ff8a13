import numpy as np
import pytest

from facedet.model.inputs import prepare
from facedet.model.postprocess import select


def test_stretch_maps_boxes_to_and_from_the_input():
    tensor, placement = prepare(np.zeros((480, 640, 3), np.uint8), 120, "stretch")
    assert tuple(tensor.shape) == (3, 120, 120)
    # (64, 48, 320, 240) in a 640x480 picture is (0.1, 0.1, 0.5, 0.5) of a stretched input.
    assert placement.to_input([[64, 48, 320, 240]]) == pytest.approx(np.array([[0.1, 0.1, 0.5, 0.5]]))
    assert placement.to_picture([[0.1, 0.1, 0.5, 0.5]]) == pytest.approx(np.array([[64, 48, 320, 240]]))


def test_letterbox_keeps_aspect_and_pads_right_and_bottom():
    rgb = np.full((480, 640, 3), 255, np.uint8)
    tensor, placement = prepare(rgb, 320, "letterbox")
    assert tuple(tensor.shape) == (3, 320, 320)
    assert tensor[:, :240, :].min() == 1.0 and tensor[:, 240:, :].max() == 0.0  # 640x480 -> 320x240 + pad
    # (64, 48, 320, 240) halves to (32, 24, 160, 120), then / 320.
    assert placement.to_input([[64, 48, 320, 240]]) == pytest.approx(np.array([[0.1, 0.075, 0.5, 0.375]]))
    assert placement.to_picture([[0.1, 0.075, 0.5, 0.375]]) == pytest.approx(np.array([[64, 48, 320, 240]]))


def test_letterbox_any_size_pads_only_to_the_stride():
    tensor, placement = prepare(np.zeros((480, 600, 3), np.uint8), 600, "letterbox", square=False)
    assert tuple(tensor.shape) == (3, 480, 608)  # 600 -> 608 = 19 * 32; 480 = 15 * 32
    assert placement.to_picture([[0, 0, 1, 1]]) == pytest.approx(np.array([[0, 0, 600, 480]]))  # clipped


def test_unknown_resize_mode_names_the_key():
    with pytest.raises(ValueError, match="model.resize"):
        prepare(np.zeros((4, 4, 3), np.uint8), 4, "crop")


def test_select_thresholds_and_suppresses_overlaps():
    decoded = np.array(
        [
            [0, 0, 10, 10, 0.9],
            [1, 0, 11, 10, 0.8],  # IoU 90/110 = 0.82: suppressed
            [20, 20, 30, 30, 0.7],
            [40, 40, 50, 50, 0.1],
        ]
    )  # apart; below threshold
    kept = select(decoded, threshold=0.5, nms_iou=0.4)
    assert kept[:, 4].tolist() == pytest.approx([0.9, 0.7])
