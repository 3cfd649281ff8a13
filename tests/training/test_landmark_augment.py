"""Augmentation moves the landmarks with the picture: flips swap left and right, crops mask points."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from facedet import coco
from facedet.config import compose_config
from facedet.training import augment
from facedet.training.data import FaceDataset

BOX = (30.0, 20.0, 70.0, 60.0)
# image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth corner (hidden)
POINTS = np.array([[[42, 34, 2], [58, 34, 2], [50, 40, 2], [44, 52, 2], [57, 52, 1]]], dtype=float)


def _pipeline(*transforms: dict):
    return augment.build({"transforms": list(transforms), "min_visibility": 0.4})


def test_a_flip_mirrors_the_points_and_swaps_left_and_right():
    rgb = np.zeros((80, 100, 3), np.uint8)
    flip = _pipeline({"_target_": "albumentations.HorizontalFlip", "p": 1.0})
    _, boxes, kept, points = augment.apply_with_landmarks(flip, rgb, [BOX], POINTS, 0)
    assert kept == [0] and boxes[0] == pytest.approx(BOX, abs=1e-4)  # a symmetric box stays
    # x -> 100 - x, then the image-left point is the old image-right one:
    # eyes (100 - 58, 100 - 42) = (42, 58); nose 50; mouth (100 - 57, 100 - 44) = (43, 56) with the
    # hidden flag following its corner (now the image-left one).
    expected = [[42, 34, 2], [58, 34, 2], [50, 40, 2], [43, 52, 1], [56, 52, 2]]
    assert points[0].ravel().tolist() == pytest.approx(np.ravel(expected).tolist(), abs=1e-4)


def test_points_cut_away_by_a_crop_are_masked():
    rgb = np.zeros((80, 100, 3), np.uint8)
    crop = _pipeline({"_target_": "albumentations.Crop", "x_min": 45, "y_min": 0, "x_max": 100, "y_max": 80})
    _, boxes, kept, points = augment.apply_with_landmarks(crop, rgb, [BOX], POINTS, 0)
    assert kept == [0] and boxes[0] == pytest.approx((0, 20, 25, 60), abs=1e-4)
    # left eye (42) and left mouth corner (44) are left of x = 45: masked; the others move by -45.
    expected = [[0, 0, 0], [13, 34, 2], [5, 40, 2], [0, 0, 0], [12, 52, 1]]
    assert points[0].ravel().tolist() == pytest.approx(np.ravel(expected).tolist(), abs=1e-4)


def test_the_training_recipe_keeps_every_point_with_its_face():
    """The real recipe (crops, zooms, flips, 15 degree rotations): every kept point lies in the picture,
    near its face, and the image-left eye stays left of the other one (a flip swapped them)."""
    pipeline = augment.build(compose_config(["model.input_size=64"], root=ROOT).augment)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)
    flipped_draws = 0
    for seed in range(40):
        out, boxes, kept, points = augment.apply_with_landmarks(pipeline, rgb, [BOX], POINTS, seed)
        for box, face in zip(boxes, points):
            visible = face[face[:, 2] > 0]
            assert ((visible[:, 0] >= 0) & (visible[:, 0] <= out.shape[1])).all()
            side = box[2] - box[0]
            assert (np.abs(visible[:, 0] - (box[0] + box[2]) / 2) < side).all()
            if face[0, 2] and face[1, 2]:
                assert face[0, 0] < face[1, 0]
            flipped_draws += int(face[3, 2] == 1)  # the hidden corner is now the image-left one
    assert flipped_draws > 0


def test_the_dataset_hands_the_loss_normalised_points(tmp_path):
    from facedet.images import write_image

    write_image(tmp_path / "a.png", np.full((80, 100, 3), 128, np.uint8))
    points = tuple(tuple(p) for p in POINTS[0].tolist())
    coco.write([coco.Image("a.png", 100, 80, [BOX, (75.0, 5.0, 95.0, 25.0)], [], [points])], tmp_path / "c.json")
    dataset = FaceDataset(tmp_path / "c.json", tmp_path, 64, "letterbox")
    _, target = dataset[0]
    # letterbox: 100 x 80 -> 64 x 51 (scales 0.64 and 51 / 80), normalised by 64: x / 100, y * 51 / 80 / 64
    assert target["landmarks"].shape == (2, 5, 3)
    assert target["landmarks"][0, 0].tolist() == pytest.approx([0.42, 34 * 51 / 80 / 64, 2], abs=1e-5)
    assert target["landmarks"][1].abs().sum() == 0  # the second face has none
