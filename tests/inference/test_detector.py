"""FaceDetector's scans: a picture larger than the model's scan size is scanned again at larger sizes, so
that a face too small at the first scan is found; frames of a video are scanned once."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from facedet.apps.sample import ASTRONAUT_FACE
from facedet.boxes import box_iou
from facedet.inference.detector import FaceDetector
from facedet.model.dense import DenseNet
from facedet.model.single_face import SingleFaceNet


def _scene(face_px: int = 32) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """scikit-image's astronaut, scaled so that her face is ``face_px`` tall, on its coffee cup scaled
    to 2400 x 1800, and her face's box (the sample's hand-drawn one, scaled and moved)."""
    scale = face_px / (ASTRONAUT_FACE[3] - ASTRONAUT_FACE[1])
    small = cv2.resize(data.astronaut(), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    scene = cv2.resize(data.coffee(), (2400, 1800))
    x, y = 1500, 700
    scene[y : y + small.shape[0], x : x + small.shape[1]] = small
    x1, y1, x2, y2 = ASTRONAUT_FACE
    return scene, (x + x1 * scale, y + y1 * scale, x + x2 * scale, y + y2 * scale)


def iou(a, b) -> float:
    return float(box_iou(a, b)[0, 0])


def test_larger_pictures_are_scanned_at_doubling_sizes_up_to_their_own_or_max_size():
    detector = FaceDetector(DenseNet(detect_size=640))
    assert detector.scan_sizes(640, 480) == [640]
    assert detector.scan_sizes(512, 512) == [640]  # a smaller picture: one scan, as it always was
    assert detector.scan_sizes(1000, 800) == [640, 1000]
    assert detector.scan_sizes(720, 1280) == [640, 1280]
    assert detector.scan_sizes(2000, 1500) == [640, 1280, 2000]
    assert detector.scan_sizes(4000, 3000) == [640, 1280, 2560]  # max_size 2560 by default
    assert detector.with_max_size(4096).scan_sizes(4000, 3000) == [640, 1280, 2560, 4000]
    assert detector.with_max_size(None).scan_sizes(4000, 3000) == [640]
    assert detector.scan_sizes(4000, 3000) == [640, 1280, 2560]  # with_max_size made a copy
    assert "larger ones also at 2x, 4x" in detector.describe()
    assert "larger ones" not in detector.with_max_size(None).describe()
    # A model that stretches pictures to its square input (the seed's network) scans once.
    assert FaceDetector(SingleFaceNet(input_size=224)).scan_sizes(4000, 3000) == [224]
    for wrong in (0, 16, 2.5, True):
        with pytest.raises(ValueError, match="max size"):
            detector.with_max_size(wrong)


def test_a_small_face_in_a_big_picture_is_found_by_the_larger_scans_only():
    detector = FaceDetector.load("bundled")
    scene, face = _scene()
    # At the first scan (640 px) her 32-px face is 8.5 px: below what the network finds.
    assert not [d for d in detector.with_max_size(None)(scene) if iou(d.box, face) > 0.3]
    found = [d for d in detector(scene) if iou(d.box, face) >= 0.5]
    assert len(found) == 1 and found[0].score >= detector.threshold
    assert found[0].landmarks is not None and all(
        face[0] <= x <= face[2] and face[1] <= y <= face[3] for x, y in found[0].landmarks
    )


def test_the_command_scans_once_with_max_size_0(tmp_path, capsys):
    from facedet.cli import main

    scene, face = _scene()
    cv2.imwrite(str(tmp_path / "scene.jpg"), scene[..., ::-1])
    counts = []
    for extra in ([], ["--max-size", "0"]):
        assert main(["detect", str(tmp_path / "scene.jpg"), "--weights", "bundled", "--json", "-", *extra]) == 0
        faces = json.loads(capsys.readouterr().out)["images"][0]["faces"]
        counts.append(sum(iou(f["box"], face) >= 0.5 for f in faces))
    assert counts == [1, 0]


def test_video_frames_are_scanned_once(tmp_path, capsys):
    from facedet.cli import main

    scene, face = _scene()
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (2400, 1800))
    for _ in range(2):
        writer.write(np.ascontiguousarray(scene[..., ::-1]))
    writer.release()
    assert main(["detect", str(video), "--weights", "bundled", "--json", "-", "--no-smooth"]) == 0
    frames = json.loads(capsys.readouterr().out)["images"]
    # The still picture's larger scans find her; the frames, scanned once for speed, do not.
    assert len(frames) == 2 and not [f for frame in frames for f in frame["faces"] if iou(f["box"], face) >= 0.5]
    assert [d for d in FaceDetector.load("bundled")(scene) if iou(d.box, face) >= 0.5]


def test_a_big_pictures_larger_scans_run_in_smaller_batches():
    # Batches hold at most the pixels of batch_size scans at the scan size (4 x 64 x 64 here).
    detector = FaceDetector(DenseNet(input_size=64, detect_size=64, neck_width=8), batch_size=4)
    shapes = []
    hook = detector.net.register_forward_hook(lambda module, inputs, output: shapes.append(tuple(inputs[0].shape)))
    with torch.no_grad():
        detector.detect_batch([np.zeros((48, 64, 3), np.uint8)] * 8)  # one scan each: 4 per batch
        assert shapes == [(4, 3, 64, 64)] * 2
        shapes.clear()
        detector.detect_batch([np.zeros((192, 256, 3), np.uint8)] * 2)  # scans at 64, 128, 256: one picture each
    hook.remove()
    assert shapes == [(1, 3, 64, 64), (1, 3, 96, 128), (1, 3, 192, 256)] * 2
