"""facedet.label_formats.export: canonical images -> LabelMe / YOLO files, and back through the importers.

Images are small real files written with PIL in tmp_path; expected file contents are by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_image

from facedet.coco import Image
from facedet.label_formats.export import export_labelme, export_yolo
from facedet.label_formats.labelme import import_folder
from facedet.label_formats.yolo import import_yolo
from facedet.problems import ProblemReport

# File names relative to the images folder <dataset>/images.
IMAGES = [
    Image("a.jpg", 64, 48, [(1.5, 2.25, 30.75, 40.0)]),
    Image("c.jpg", 64, 48),  # a negative
    Image("sub/b.png", 40, 30, [(0.0, 0.0, 40.0, 30.0), (5.0, 5.0, 10.0, 12.0)], [(20.0, 2.0, 30.0, 9.0)]),
]


@pytest.fixture
def dataset(tmp_path) -> Path:
    for image in IMAGES:
        write_image(tmp_path / "images" / image.file_name, image.width, image.height)
    return tmp_path


def assert_same_boxes(imported: list[Image], ignore_kept: bool) -> None:
    by_name = {i.file_name: i for i in imported}
    assert sorted(by_name) == ["images/" + i.file_name for i in IMAGES]
    for image in IMAGES:
        got = by_name["images/" + image.file_name]
        assert (got.width, got.height) == (image.width, image.height)
        assert len(got.boxes) == len(image.boxes)
        for box, expected in zip(got.boxes, image.boxes):
            assert box == pytest.approx(expected, abs=0.01)
        # LabelMe keeps them as 'ignore' rectangles; YOLO has no way to say so.
        expected_ignore = image.ignore if ignore_kept else []
        assert len(got.ignore) == len(expected_ignore)
        for box, expected in zip(got.ignore, expected_ignore):
            assert box == pytest.approx(expected, abs=0.01)


def test_labelme_export_files_and_round_trip(dataset):
    written = export_labelme(IMAGES, dataset / "images", dataset / "labels")

    assert written == [dataset / "labels/a.json", dataset / "labels/sub/b.json"]  # no file for the negative
    a = json.loads((dataset / "labels/a.json").read_text())
    assert a == {
        "version": "5.4.1",
        "flags": {},
        "imagePath": "../images/a.jpg",
        "imageData": None,
        "imageHeight": 48,
        "imageWidth": 64,
        "shapes": [
            {
                "label": "face",
                "points": [[1.5, 2.25], [30.75, 40.0]],
                "group_id": None,
                "description": "",
                "shape_type": "rectangle",
                "flags": {},
                "mask": None,
            }
        ],
    }
    b = json.loads((dataset / "labels/sub/b.json").read_text())
    assert b["imagePath"] == "../../images/sub/b.png"  # from labels/sub/ up to the dataset, then down
    assert [s["label"] for s in b["shapes"]] == ["face", "face", "ignore"]

    report = ProblemReport("labels")
    assert_same_boxes(import_folder(dataset, report), ignore_kept=True)
    assert report.problems == []


def test_yolo_export_files_and_round_trip(dataset):
    written = export_yolo(IMAGES, dataset / "labels")

    assert written == [dataset / "labels/a.txt", dataset / "labels/c.txt", dataset / "labels/sub/b.txt"]
    # a: cx (1.5 + 30.75) / 2 / 64 = 16.125 / 64 = 0.251953125, cy (2.25 + 40) / 2 / 48 = 0.44010417,
    #    w 29.25 / 64 = 0.45703125, h 37.75 / 48 = 0.78645833 (6 decimals, rounded)
    assert (dataset / "labels/a.txt").read_text() == "0 0.251953 0.440104 0.457031 0.786458\n"
    assert (dataset / "labels/c.txt").read_text() == ""  # the negative: an empty file
    # b: the whole 40x30 image, then (5, 5, 10, 12): cx 7.5 / 40, cy 8.5 / 30, w 5 / 40, h 7 / 30;
    #    the ignore region is left out
    assert (dataset / "labels/sub/b.txt").read_text() == (
        "0 0.500000 0.500000 1.000000 1.000000\n0 0.187500 0.283333 0.125000 0.233333\n"
    )

    report = ProblemReport("labels")
    assert_same_boxes(import_yolo(dataset, report), ignore_kept=False)
    assert report.problems == []


def test_yolo_export_refuses_two_images_sharing_a_label_file(tmp_path):
    with pytest.raises(ValueError, match="x.png: another image of the same name"):
        export_yolo([Image("x.jpg", 10, 10), Image("x.png", 10, 10)], tmp_path)
