"""Five landmarks in every label format: the canonical COCO keypoints, the importers, export-labels.

Label files are written by hand next to small real images; the expected points are written by hand,
in facedet's order (image-left eye, image-right eye, nose, image-left and image-right mouth corner).
"""

from __future__ import annotations

import json

import pytest
from helpers import imported, messages, shape, write_image, write_labelme, write_text

from facedet import coco
from facedet.coco import KEYPOINT_NAMES, Image
from facedet.label_formats.coco_json import import_coco
from facedet.label_formats.export import export_labelme, export_yolo
from facedet.label_formats.labelme import import_folder
from facedet.label_formats.registry import import_labels
from facedet.label_formats.retinaface import import_retinaface
from facedet.label_formats.yolo import import_yolo
from facedet.problems import ProblemReport

# One face 40 x 40 at (30, 20) in a 100 x 80 image, its points where a frontal face has them.
BOX = (30.0, 20.0, 70.0, 60.0)
POINTS = ((42.0, 34.0, 2), (58.0, 34.0, 2), (50.0, 42.0, 2), (44.0, 52.0, 2), (56.0, 52.0, 1))


def test_canonical_file_round_trip_keeps_points_and_faces_without(tmp_path):
    images = [Image("a.jpg", 100, 80, [BOX, (0.0, 0.0, 10.0, 10.0)], [], [POINTS]), Image("b.jpg", 100, 80, [BOX])]
    coco.write(images, tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    first, second, third = data["annotations"]
    assert first["keypoints"][:3] == [42.0, 34.0, 2] and first["num_keypoints"] == 5
    assert "keypoints" not in second and "keypoints" not in third  # faces without landmarks
    assert data["categories"][0]["keypoints"] == list(KEYPOINT_NAMES)
    back = coco.read(tmp_path / "c.json")
    assert back[0].face_landmarks() == [POINTS, None]
    assert back[1].landmarks == [] and back[1].face_landmarks() == [None]


def test_labelme_points_by_group_id_and_by_lying_inside_one_face(tmp_path):
    write_image(tmp_path / "a.jpg", 100, 80)
    second = (75.0, 5.0, 95.0, 25.0)
    shapes = [
        shape("rectangle", [[30, 20], [70, 60]], "face", 7),
        shape("rectangle", [[75, 5], [95, 25]], "face"),
        # the first face's points by group id, in a shuffled order
        *[shape("point", [[x, y]], name, 7) for name, (x, y, _) in reversed(list(zip(KEYPOINT_NAMES, POINTS)))],
        # the second face's nose without a group id: it lies inside that face only
        shape("point", [[85, 15]], "nose"),
        # a point inside no face: reported, left out
        shape("point", [[5, 75]], "nose"),
    ]
    write_labelme(tmp_path / "a.json", "a.jpg", shapes, 100, 80)
    report = ProblemReport("labels")
    image = import_folder(tmp_path, report)[0]
    assert image.boxes == [BOX, second]
    first, other = image.face_landmarks()
    assert [p[:2] for p in first] == [p[:2] for p in POINTS] and all(v == 2 for *_, v in first)
    assert other == ((0.0, 0.0, 0), (0.0, 0.0, 0), (85.0, 15.0, 2), (0.0, 0.0, 0), (0.0, 0.0, 0))
    errors = messages(report, "error")
    assert len(errors) == 1 and "a.json" in errors[0] and "no single face" in errors[0]


def test_labelme_person_left_is_converted_and_a_bad_point_costs_only_the_landmarks(tmp_path):
    write_image(tmp_path / "a.jpg", 100, 80)
    # "left_eye" meaning the person's left eye: the one on the image's right (x 58).
    person = {
        "left_eye": (58, 34),
        "right_eye": (42, 34),
        "nose": (50, 42),
        "mouth_left": (56, 52),
        "mouth_right": (44, 52),
    }
    shapes = [shape("rectangle", [[30, 20], [70, 60]], "face", 1)]
    shapes += [shape("point", [xy], name, 1) for name, xy in person.items()]
    write_labelme(tmp_path / "a.json", "a.jpg", shapes, 100, 80)
    images, _ = imported(lambda src, report, **o: import_labels("labelme", src, report, **o), tmp_path, left="person")
    assert [p[:2] for p in images["a.jpg"].landmarks[0]] == [p[:2] for p in POINTS]

    shapes[2]["points"] = [[500, 34]]  # far outside the face: wrong units?
    write_labelme(tmp_path / "a.json", "a.jpg", shapes, 100, 80)
    images, report = imported(lambda src, report, **o: import_labels("labelme", src, report, **o), tmp_path)
    assert images["a.jpg"].boxes == [BOX] and images["a.jpg"].face_landmarks() == [None]
    (error,) = messages(report, "error")
    assert error.startswith("a.json: shape 0") and "far outside its face box" in error


def test_retinaface_label_txt(tmp_path):
    write_image(tmp_path / "images" / "0--Parade" / "x.jpg", 100, 80)
    write_image(tmp_path / "images" / "0--Parade" / "y.jpg", 100, 80)
    write_text(
        tmp_path / "label.txt",
        "# 0--Parade/x.jpg\n"
        "30 20 40 40 42.0 34.0 0.0 58.0 34.0 0.0 50.0 42.0 0.0 44.0 52.0 0.0 56.0 52.0 1.0 0.82\n"
        "75 5 20 20 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1\n"
        "# 0--Parade/y.jpg\n"
        "30 20 40 abc\n",
    )
    images, report = imported(import_retinaface, tmp_path)
    x = images["images/0--Parade/x.jpg"]
    assert x.boxes == [BOX, (75.0, 5.0, 95.0, 25.0)]
    assert x.face_landmarks() == [POINTS, None]  # flag 0 -> visible (2), 1 -> hidden (1); all -1 -> none
    assert "images/0--Parade/y.jpg" not in images
    (error,) = messages(report, "error")
    assert error.startswith("label.txt: line 5:") and "not a number" in error


def test_coco_keypoints_in_the_order_the_category_names(tmp_path):
    write_image(tmp_path / "images" / "a.jpg", 100, 80)
    order = ["nose", "left_eye", "right_eye", "mouth_left", "mouth_right"]
    flat = [v for name in order for v in POINTS[KEYPOINT_NAMES.index(name)]]
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [30, 20, 40, 40], "keypoints": flat, "num_keypoints": 5},
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "bbox": [75, 5, 20, 20],
                "keypoints": [0] * 15,
                "num_keypoints": 0,
            },
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 60, 20, 20], "keypoints": [1, 2, 3]},
        ],
        "categories": [{"id": 1, "name": "face", "keypoints": order}],
    }
    write_text(tmp_path / "annotations" / "faces.json", json.dumps(data))
    images, report = imported(import_coco, tmp_path)
    assert images["images/a.jpg"].face_landmarks() == [POINTS, None, None]
    (error,) = messages(report, "error")
    assert "annotations[2]" in error and "3 points, expected 5" in error and "kept without them" in error


def test_yolo_pose_lines(tmp_path):
    write_image(tmp_path / "images" / "a.jpg", 100, 80)
    pose = " ".join(f"{x / 100:.2f} {y / 80:.3f} {v}" for x, y, v in POINTS)
    write_text(tmp_path / "labels" / "a.txt", f"0 0.5 0.5 0.4 0.5 {pose}\n0 0.85 0.1875 0.2 0.25\n")
    images, report = imported(import_yolo, tmp_path)
    got = images["images/a.jpg"].face_landmarks()
    assert [pytest.approx(p, abs=1e-6) for p in got[0]] == list(POINTS) and got[1] is None
    assert not report.problems


def test_export_labels_writes_the_points_back(tmp_path):
    images = [Image("a.jpg", 100, 80, [BOX, (75.0, 5.0, 95.0, 25.0)], [], [POINTS]), Image("b.jpg", 100, 80)]
    root = tmp_path / "data"
    write_image(root / "a.jpg", 100, 80)
    write_image(root / "b.jpg", 100, 80)
    export_labelme(images, root, root)
    back = {i.file_name: i for i in import_folder(root, ProblemReport("labels"))}
    assert back["a.jpg"].face_landmarks() == [tuple((x, y, 2) for x, y, _ in POINTS), None]
    export_yolo(images, root / "labels")
    (root / "images").mkdir()
    (root / "a.jpg").rename(root / "images" / "a.jpg")
    lines = (root / "labels" / "a.txt").read_text().splitlines()
    assert len(lines[0].split()) == 20 and lines[1].endswith(" 0.000000 0.000000 0")
    yolo, _ = imported(import_yolo, root)
    assert [pytest.approx(p, abs=1e-4) for p in yolo["images/a.jpg"].face_landmarks()[0]] == list(POINTS)
    # person-left export swaps the sides: the first point written is the image-right eye
    export_yolo(images, root / "person", left="person")
    assert (root / "person" / "a.txt").read_text().split()[5] == f"{58 / 100:.6f}"
