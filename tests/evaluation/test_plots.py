"""Plots are written as real PNGs of the expected size, with boxes where they belong."""

import cv2
import numpy as np

from facedet.coco import Image
from facedet.evaluation.metrics import Detection, pr_curve
from facedet.evaluation.plots import plot_pr_curve, prediction_grid

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREEN_BGR = [0, 255, 0]
RED_BGR = [0, 0, 255]
YELLOW_BGR = [0, 255, 255]


def test_plot_pr_curve(tmp_path):
    truth = [Image("a.jpg", 100, 100, [(0, 0, 10, 10), (50, 50, 60, 60)])]
    predictions = [[Detection((0, 0, 10, 10), 0.9), Detection((20, 20, 30, 30), 0.8), Detection((50, 50, 60, 60), 0.7)]]
    path = tmp_path / "sub" / "pr.png"
    plot_pr_curve(pr_curve(truth, predictions), path, title="val")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (500, 500, 3)  # 5 x 5 in at 100 dpi


def test_plot_pr_curve_empty(tmp_path):
    path = tmp_path / "empty.png"
    plot_pr_curve({"threshold": [], "precision": [], "recall": []}, path)
    assert cv2.imread(str(path)).shape == (500, 500, 3)


def is_color(pixel, bgr):
    return list(pixel) == bgr


def test_prediction_grid(tmp_path):
    tile = 64
    # 100 x 50 RGB image: scale min(64/100, 64/50) = 0.64 -> 64 x 32, letterboxed at y offset 16.
    # GT (10,10,40,40) -> (6.4, 16+6.4, 25.6, 16+25.6) -> top edge on row 22, columns 6..26.
    black = np.zeros((50, 100, 3), np.uint8)
    truth = [
        Image("face.jpg", 100, 50, [(10, 10, 40, 40)]),
        # same picture given at half the annotated resolution: boxes are scaled to the array
        Image("half.jpg", 200, 100, [(20, 20, 80, 80)]),
        Image("neg.jpg", 100, 50, []),
        Image("low.jpg", 100, 50, []),
        Image("fifth.jpg", 100, 50, []),
    ]
    predictions = [
        [],
        [],
        [Detection((60, 5, 90, 35), 0.9)],  # drawn red
        [Detection((60, 5, 90, 35), 0.1)],  # below threshold: not drawn
        [],
    ]
    path = tmp_path / "grid.png"
    prediction_grid([black, black, black, black, black], truth, predictions, path, threshold=0.5, columns=4, tile=tile)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    grid = cv2.imread(str(path))
    # 5 images in 4 columns -> 2 rows x 4 columns of 64 px tiles
    assert grid.shape == (2 * tile, 4 * tile, 3)
    assert is_color(grid[22, 15], GREEN_BGR)  # tile 0: top edge of the GT box
    assert is_color(grid[22, tile + 15], GREEN_BGR)  # tile 1: same box, scaled from 200x100
    # tile 2: prediction (60,5,90,35) -> x 38.4..57.6, y 16+3.2..16+22.4 -> left edge column 38
    assert is_color(grid[30, 2 * tile + 38], RED_BGR)
    tile3 = grid[:tile, 3 * tile : 4 * tile].reshape(-1, 3)
    assert not (tile3 == RED_BGR).all(axis=1).any()  # below threshold: no red at all
    assert not (grid == GREEN_BGR).all(axis=2)[:, 2 * tile :].any()  # no GT on tiles 2, 3, 4


def test_prediction_grid_grayscale_and_empty(tmp_path):
    gray = np.full((40, 40), 128, np.uint8)
    path = tmp_path / "gray.png"
    prediction_grid([gray], [Image("g.jpg", 40, 40, [(5, 5, 20, 20)])], [[]], path, threshold=0.5, tile=32)
    assert cv2.imread(str(path)).shape == (32, 32, 3)
    path = tmp_path / "none.png"
    prediction_grid([], [], [], path, threshold=0.5, tile=32)
    assert cv2.imread(str(path)).shape == (32, 32, 3)


def test_prediction_grid_draws_ignore_regions_dashed_yellow(tmp_path):
    # 64 x 64 image on a 64 px tile: scale 1, no letterbox. Ignore region (8,8,56,56): its top edge
    # is row 8, dashes of 4 px from column 8: 8..11 drawn, 12..15 gap, 16..19 drawn, ...
    black = np.zeros((64, 64, 3), np.uint8)
    path = tmp_path / "ignore.png"
    prediction_grid(
        [black], [Image("crowd.jpg", 64, 64, [], ignore=[(8, 8, 56, 56)])], [[]], path, threshold=0.5, tile=64
    )
    grid = cv2.imread(str(path))
    assert is_color(grid[8, 9], YELLOW_BGR) and is_color(grid[8, 17], YELLOW_BGR)
    assert is_color(grid[8, 13], [0, 0, 0])  # a gap between two dashes
    # left edge, column 8, dashes on rows 8..11, 16..19, 24..27, 32..35: row 34 drawn, row 30 a gap
    assert is_color(grid[34, 8], YELLOW_BGR) and is_color(grid[30, 8], [0, 0, 0])
    assert not (grid == GREEN_BGR).all(axis=2).any()  # an ignore region is not a face box
