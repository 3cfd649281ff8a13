"""Landmarks in use: NME by hand, aligned crops, detect's JSON/CSV, ONNX parity, video smoothing, drawing."""

from __future__ import annotations

import csv
import json
import math

import cv2
import numpy as np
import pytest

from facedet.coco import Detection, Image
from facedet.evaluation.metrics import landmark_metrics
from facedet.inference.align import ARCFACE_TEMPLATE, align_faces
from facedet.inference.detector import BUNDLED_WEIGHTS, FaceDetector
from facedet.inference.onnx import export_onnx
from facedet.model import weights
from facedet.model.dense import DenseNet
from facedet.video import BoxSmoother

TINY = {"name": "dense", "input_size": 64, "widths": [4, 8, 8, 8, 8], "depth": 0, "neck_width": 8, "landmarks": True}


@pytest.fixture
def landmark_model(tmp_path):
    """An untrained tiny landmark model (plumbing only: its points mean nothing), threshold 0."""
    import torch

    torch.manual_seed(0)
    options = {k: v for k, v in TINY.items() if k != "name"}
    path = tmp_path / "marks.safetensors"
    weights.save(DenseNet(**options), TINY, path, threshold=0.0)
    return path


def test_nme_by_hand():
    # A 40 x 90 box: sqrt(3600) = 60. Every point 6 px off (3-4-5 x 1.2: dx 3.6, dy 4.8) -> NME 0.1 exactly;
    # the second face has only its nose labelled, 12 px off -> 0.2 (a failure).
    points = ((10.0, 20.0, 2), (30.0, 20.0, 2), (20.0, 40.0, 2), (12.0, 70.0, 2), (28.0, 70.0, 1))
    nose_only = tuple((0.0, 0.0, 0) if k != 2 else (120.0, 40.0, 2) for k in range(5))
    truth = [Image("a", 300, 200, [(0, 0, 40, 90), (100, 0, 140, 90), (200, 0, 240, 90)], [], [points, nose_only])]
    moved = tuple((x + 3.6, y + 4.8) for x, y, _ in points)
    predictions = [
        [
            Detection((0, 0, 40, 90), 0.9, moved),
            Detection(
                (100, 0, 140, 90), 0.8, tuple((x, y + 12.0) for x, y in [(0, 0)] * 2 + [(120, 40)] + [(0, 0)] * 2)
            ),
            Detection((200, 0, 240, 90), 0.7, moved),  # a face without landmarks: not measured
        ]
    ]
    result = landmark_metrics(truth, predictions, threshold=0.5)
    assert result["nme"] == pytest.approx((0.1 + 0.2) / 2)
    assert result["nme_left_eye"] == pytest.approx(0.1) and result["nme_nose"] == pytest.approx((0.1 + 0.2) / 2)
    assert result["nme_failure_rate"] == pytest.approx(0.5) and result["nme_faces"] == 2 and result["nme_missed"] == 0
    # below the threshold the second face is missed: not in the means
    result = landmark_metrics(truth, predictions, threshold=0.85)
    assert result["nme"] == pytest.approx(0.1) and result["nme_missed"] == 1
    # box-only predictions or truth without landmarks: nothing to say
    assert landmark_metrics(truth, [[Detection((0, 0, 40, 90), 0.9)]], 0.5) == {}
    assert landmark_metrics([Image("a", 300, 200, [(0, 0, 40, 90)])], predictions, 0.5) == {}


def test_align_puts_the_points_on_arcfaces_template():
    # A picture with five dots where the template's points land after a known similarity
    # (scale 2.5, 30 degrees, shift): the aligned 112 x 112 crop has its dots back on the template.
    angle, scale, shift = math.radians(30), 2.5, np.array([150.0, 60.0])
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = ARCFACE_TEMPLATE @ rotation.T + shift
    picture = np.zeros((480, 640, 3), np.uint8)
    for x, y in points:
        cv2.circle(picture, (int(round(x)), int(round(y))), 5, (255, 255, 255), -1)
    face = Detection((0, 0, 10, 10), 0.9, tuple(map(tuple, points.tolist())))
    (crop,) = align_faces(picture, [face], 112)
    assert crop.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE:
        assert crop[int(round(y)), int(round(x))].min() > 200  # a dot's centre
    (big,) = align_faces(picture, [face], 224)  # the template scales with the size
    assert (
        big.shape == (224, 224, 3)
        and big[int(round(2 * ARCFACE_TEMPLATE[2, 1])), int(round(2 * ARCFACE_TEMPLATE[2, 0]))].min() > 200
    )
    with pytest.raises(ValueError, match="without landmarks"):
        align_faces(picture, [Detection((0, 0, 10, 10), 0.9)])


# skimage's astronaut: her five points (YuNet's, checked by eye on a 5x enlargement: pupil centres,
# nose tip, mouth corners).
ASTRONAUT_POINTS = ((200, 101), (247, 102), (220, 124), (198, 142), (239, 143))
TOLERANCE = 0.1  # of the face size (sqrt of the box area): where NME counts a face as failed


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_bundled_model_puts_five_points_where_a_person_would(backend):
    from skimage import data

    detector = FaceDetector.load(BUNDLED_WEIGHTS, backend=backend)
    (face,) = detector(data.astronaut())
    x1, y1, x2, y2 = face.box
    size = math.sqrt((x2 - x1) * (y2 - y1))
    errors = [math.dist(point, truth) / size for point, truth in zip(face.landmarks, ASTRONAUT_POINTS)]
    assert detector.has_landmarks and max(errors) < TOLERANCE, errors
    (crop,) = detector.align(data.astronaut())
    assert crop.shape == (112, 112, 3)


def test_a_box_only_model_file_has_no_landmarks_and_cannot_align(tmp_path):
    options = {k: v for k, v in TINY.items() if k not in ("name", "landmarks")}
    weights.save(DenseNet(**options), TINY | {"landmarks": False}, tmp_path / "boxes.safetensors", threshold=0.0)
    detector = FaceDetector.load(tmp_path / "boxes.safetensors", backend="torch")
    picture = np.zeros((120, 160, 3), np.uint8)
    assert not detector.has_landmarks and all(face.landmarks is None for face in detector(picture, 0.0))
    with pytest.raises(ValueError, match="predicts no landmarks"):
        detector.align(picture)


def test_onnx_export_carries_the_landmarks_with_pytorch_parity(landmark_model, tmp_path):
    diff = export_onnx(landmark_model, tmp_path / "marks.onnx")
    assert diff < 1e-4
    import torch

    batch = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    on_torch = FaceDetector.load(landmark_model, backend="torch").backend(batch)
    on_onnx = FaceDetector.load(tmp_path / "marks.onnx").backend(batch)
    assert on_torch.shape == on_onnx.shape == (1, 12 * 16 + 6 * 8 + 3 * 4, 15)
    assert np.abs(on_torch - on_onnx).max() < 1e-4
    assert FaceDetector.load(tmp_path / "marks.onnx").has_landmarks


def test_detect_json_and_csv_carry_landmarks_and_align_writes_crops(landmark_model, tmp_path):
    from facedet.apps.align import write_aligned
    from facedet.apps.detect import run_detect
    from facedet.images import write_image

    (tmp_path / "pics").mkdir()
    write_image(tmp_path / "pics" / "a.png", np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    detector = FaceDetector.load(landmark_model, backend="torch")
    run_detect(tmp_path / "pics", detector, json_out=tmp_path / "d.json", csv_out=tmp_path / "d.csv")
    face = json.loads((tmp_path / "d.json").read_text())["images"][0]["faces"][0]
    assert len(face["landmarks"]) == 5 and all(len(p) == 2 for p in face["landmarks"])
    with open(tmp_path / "d.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert [list(map(float, pair.split())) for pair in row["landmarks"].split(";")] == face["landmarks"]
    written, errors = write_aligned(detector, tmp_path / "pics", tmp_path / "crops", 112)
    assert written > 0 and not errors and (tmp_path / "crops" / "a_0.png").is_file()


def test_video_smoothing_covers_the_landmarks():
    smoother = BoxSmoother(alpha=0.5)
    first = Detection((0, 0, 10, 10), 0.9, ((2.0, 3.0),) * 5)
    smoother.update([first])
    (second,) = smoother.update([Detection((1, 1, 11, 11), 0.9, ((4.0, 5.0),) * 5)])
    assert second.box == (0.5, 0.5, 10.5, 10.5) and second.landmarks == ((3.0, 4.0),) * 5
    (plain,) = BoxSmoother().update([Detection((0, 0, 10, 10), 0.9)])
    assert plain.landmarks is None


def test_prelabel_with_yunet_proposes_five_points_per_face(tmp_path):
    pytest.importorskip("yuface")
    from skimage import data

    from facedet.apps.prelabel import peer_proposer, prelabel
    from facedet.images import write_image
    from facedet.label_formats.labelme import import_folder
    from facedet.problems import ProblemReport

    (tmp_path / "images").mkdir()
    write_image(tmp_path / "images" / "astronaut.png", data.astronaut())
    summary = prelabel(tmp_path / "images", peer_proposer("yunet"), progress=False)
    assert len(summary.written) == 1
    (image,) = import_folder(tmp_path, ProblemReport("labels"))
    (points,) = image.face_landmarks()
    # Eileen Collins' face (facedet's sample: box 174..272 x 72..168): image-left eye left of the other,
    # both above the nose tip, the mouth corners below it, all inside the face box.
    (x1, y1, x2, y2), (le, re, nose, ml, mr) = image.boxes[0], points
    assert le[0] < nose[0] < re[0] and ml[0] < mr[0] and max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])
    assert all(x1 <= x <= x2 and y1 <= y <= y2 and v == 2 for x, y, v in points)


@pytest.mark.slow  # torch.export takes 10-30 s on 2 CPU cores
def test_the_mlflow_model_returns_the_landmarks(tmp_path):
    import mlflow
    import torch

    from facedet.tracking import Tracker
    from facedet.training.publish import Predictor, log_servable

    torch.manual_seed(0)
    net = DenseNet(**{k: v for k, v in TINY.items() if k != "name"}).eval()
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "t")
    tracker.client.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    info = log_servable(tracker, tracker.create_run("servable", {}), net)
    with mlflow.tracking._tracking_service.utils._use_tracking_uri(tracker.uri):
        pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    assert info.signature.outputs.inputs[0].shape == (-1, -1, 15)
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        expected = Predictor(net).eval()(x).numpy()
    assert expected.shape[-1] == 15 and np.abs(pyfunc.predict(x.numpy()) - expected).max() < 1e-5
