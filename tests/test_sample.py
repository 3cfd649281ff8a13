"""Tests for the embedded sample dataset (facedet.sample)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from facedet.sample import SampleSettings, generate

SHAPE_KEYS = ["label", "points", "group_id", "description", "shape_type", "flags", "mask"]
TOP_KEYS = ["version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"]


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _boxes(label_file: Path) -> list[tuple[float, float, float, float]]:
    data = json.loads(label_file.read_text())
    return [(s["points"][0][0], s["points"][0][1], s["points"][1][0], s["points"][1][1]) for s in data["shapes"]]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sample40(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample40")
    assert generate(out, SampleSettings(n_images=40)) == 40
    return out


def test_deterministic(tmp_path):
    settings = SampleSettings(n_images=12, max_faces=2, seed=3)
    a, b = tmp_path / "a", tmp_path / "b"
    assert generate(a, settings) == generate(b, settings) == 12
    files_a, files_b = _files(a), _files(b)
    assert files_a.keys() == files_b.keys()
    assert len([k for k in files_a if k.endswith(".jpg")]) == 12
    assert all(files_a[k] == files_b[k] for k in files_a)
    # Another seed gives another sample.
    generate(b, SampleSettings(n_images=12, max_faces=2, seed=4))
    assert _files(b) != files_a


def test_regenerate_removes_stale_files(tmp_path):
    generate(tmp_path, SampleSettings(n_images=10))
    generate(tmp_path, SampleSettings(n_images=4))
    assert len(list((tmp_path / "images").iterdir())) == 4
    assert {p.stem for p in (tmp_path / "labels").iterdir()} <= {p.stem for p in (tmp_path / "images").iterdir()}


def test_counts_and_negatives(sample40):
    images = sorted((sample40 / "images").glob("sample_*.jpg"))
    labels = sorted((sample40 / "labels").glob("sample_*.json"))
    assert [p.name for p in images] == [f"sample_{i:04d}.jpg" for i in range(40)]
    assert {p.stem for p in labels} <= {p.stem for p in images}
    negatives = len(images) - len(labels)
    assert negatives == 8  # 20 % of 40
    for label in labels:
        assert len(_boxes(label)) >= 1  # a JSON is written only for images with a face


def test_labelme_format_and_boxes(sample40):
    for label in sorted((sample40 / "labels").glob("*.json")):
        text = label.read_text()
        data = json.loads(text)
        assert text == json.dumps(data, indent=2)
        assert list(data) == TOP_KEYS
        assert data["version"] == "5.4.1" and data["flags"] == {} and data["imageData"] is None
        assert data["imagePath"] == f"../images/{label.stem}.jpg"
        image = cv2.imread(str(label.parent / data["imagePath"]))
        assert image is not None
        h, w = image.shape[:2]
        assert (data["imageWidth"], data["imageHeight"]) == (w, h) == (640, 480)
        for shape in data["shapes"]:
            assert list(shape) == SHAPE_KEYS
            assert shape["label"] == "face" and shape["shape_type"] == "rectangle"
            assert shape["group_id"] is None and shape["mask"] is None
            assert shape["description"] == "" and shape["flags"] == {}
            (x1, y1), (x2, y2) = shape["points"]
            assert all(isinstance(v, float) for v in (x1, y1, x2, y2))
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            assert x2 - x1 >= 10 and y2 - y1 >= 10


def test_multiple_faces_do_not_overlap(tmp_path):
    generate(tmp_path, SampleSettings(n_images=20, max_faces=3, seed=1))
    counts = []
    for label in sorted((tmp_path / "labels").glob("*.json")):
        data = json.loads(label.read_text())
        boxes = _boxes(label)
        counts.append(len(boxes))
        assert 1 <= len(boxes) <= 3
        for i, a in enumerate(boxes):
            x1, y1, x2, y2 = a
            assert 0 <= x1 < x2 <= data["imageWidth"] and 0 <= y1 < y2 <= data["imageHeight"]
            for b in boxes[i + 1:]:
                assert _iou(a, b) < 0.3
    assert sum(c >= 2 for c in counts) >= 3
    assert len(counts) == 16


def test_haar_cascade_finds_the_labelled_faces(sample40):
    """An independent detector agrees with the labels on large faces: the boxes sit on real faces."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert not cascade.empty()
    hits = []
    for label in sorted((sample40 / "labels").glob("*.json")):
        large = [b for b in _boxes(label) if max(b[2] - b[0], b[3] - b[1]) > 120]
        if not large:
            continue
        gray = cv2.imread(str(sample40 / "images" / f"{label.stem}.jpg"), cv2.IMREAD_GRAYSCALE)
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(60, 60))
        detections = [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in found]
        for box in large:
            hits.append(max((_iou(box, d) for d in detections), default=0.0) > 0.3)
    # The cameraman is seen in profile, which the frontal cascade misses; the others must match.
    assert len(hits) >= 4
    assert sum(hits) / len(hits) >= 0.5
