"""facedet.label_formats.{wider,fddb,coco_json,yolo,voc,formats}: other label formats -> images with faces.

Every label file is written by hand in tmp_path next to small real images (PIL); the expected
boxes are written by hand too, with how they were derived.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import imported, messages, write_image, write_text
from PIL import Image as PILImage

from facedet.boxes import ellipse_box
from facedet.coco import Image
from facedet.label_formats.coco_json import import_coco
from facedet.label_formats.fddb import import_fddb
from facedet.label_formats.registry import IMPORTERS, import_labels
from facedet.label_formats.voc import import_voc
from facedet.label_formats.wider import import_wider
from facedet.label_formats.yolo import import_yolo
from facedet.problems import ProblemReport


def approx_boxes(boxes):
    return [pytest.approx(b, abs=1e-6) for b in boxes]


@pytest.fixture
def opened(monkeypatch) -> list[Path]:
    """Every path PIL opens (to prove that files outside the dataset are never opened)."""
    paths, real_open = [], PILImage.open
    monkeypatch.setattr(
        PILImage, "open", lambda fp, *a, **k: paths.append(Path(getattr(fp, "name", fp))) or real_open(fp, *a, **k)
    )
    return paths


# --- WIDER FACE ------------------------------------------------------------------------------


WIDER_GT = """\
0--Parade/a.jpg
3
10 20 30 40 0 0 0 0 0 0
50 5 8 20 2 0 0 0 1 0
5 5 12 12 0 0 0 1 0 0
0--Parade/b.jpg
0
0 0 0 0 0 0 0 0 0 0
1--Handshaking/c.jpg
1
60 30 20 30 0 0 0 0 0 0
"""


def wider_dataset(root: Path, gt: str, split: str = "train") -> Path:
    write_image(root / f"WIDER_{split}/images/0--Parade/a.jpg", 100, 80)
    write_image(root / f"WIDER_{split}/images/0--Parade/b.jpg", 64, 48)
    write_image(root / f"WIDER_{split}/images/1--Handshaking/c.jpg", 70, 50)
    write_image(root / f"WIDER_{split}/images/0--Parade/d.jpg", 64, 48)
    write_text(root / f"wider_face_split/wider_face_{split}_bbx_gt.txt", gt)
    return root


def test_wider_faces_ignore_regions_zero_face_dummy_and_clipping(tmp_path):
    images, report = imported(import_wider, wider_dataset(tmp_path, WIDER_GT))

    p = "WIDER_train/images/"
    assert list(images) == [p + "0--Parade/a.jpg", p + "0--Parade/b.jpg", p + "1--Handshaking/c.jpg"]  # d: unlisted
    # x1 y1 w h -> (x1, y1, x1 + w, y1 + h): 10 20 30 40 -> (10, 20, 40, 60), a normal face.
    # 50 5 8 20: shorter side 8 < min_size 10 -> ignore (50, 5, 58, 25); 5 5 12 12 invalid -> ignore.
    assert images[p + "0--Parade/a.jpg"] == Image(
        p + "0--Parade/a.jpg", 100, 80, [(10, 20, 40, 60)], [(50, 5, 58, 25), (5, 5, 17, 17)]
    )
    # 0 faces + the dummy line: a negative, and the dummy is not read as a record
    assert images[p + "0--Parade/b.jpg"] == Image(p + "0--Parade/b.jpg", 64, 48)
    # 60 30 20 30 -> (60, 30, 80, 60) on a 70x50 image -> clipped to (60, 30, 70, 50)
    assert images[p + "1--Handshaking/c.jpg"].boxes == [(60, 30, 70, 50)]
    assert report.errors == []
    (warning,) = messages(report, "warning")
    assert warning.startswith("wider_face_split/wider_face_train_bbx_gt.txt: line 11:") and "clipped" in warning


def test_wider_min_size_and_explicit_paths(tmp_path):
    wider_dataset(tmp_path, WIDER_GT, split="val")
    images, report = imported(
        import_wider,
        tmp_path,
        annotations="wider_face_split/wider_face_val_bbx_gt.txt",
        images=tmp_path / "WIDER_val/images",
        min_size=5,
    )

    a = images["WIDER_val/images/0--Parade/a.jpg"]
    assert a.boxes == [(10, 20, 40, 60), (50, 5, 58, 25)]  # 8 px wide >= min_size 5: a face now
    assert a.ignore == [(5, 5, 17, 17)]  # still invalid


def test_wider_malformed_records_drop_only_their_image(tmp_path):
    gt = """\
0--Parade/a.jpg
two
10 10 20 20 0 0 0 0 0 0
0--Parade/b.jpg
1
1 2 30 40 0 0 0 0 0 0
1--Handshaking/c.jpg
2
3 3 20 20 0 0 0 0 0 0
0--Parade/d.jpg
1
5 5 20 x 0 0 0 0 0 0
"""
    images, report = imported(import_wider, wider_dataset(tmp_path, gt))

    assert list(images) == ["WIDER_train/images/0--Parade/b.jpg"]
    assert images["WIDER_train/images/0--Parade/b.jpg"].boxes == [(1, 2, 31, 42)]  # 1 2 30 40
    errors = messages(report, "error")
    assert len(errors) == 3
    name = "wider_face_split/wider_face_train_bbx_gt.txt"
    assert errors[0].startswith(f"{name}: line 2: face count 'two' is not a whole number")
    assert "0--Parade/a.jpg" in errors[0]
    assert errors[1].startswith(f"{name}: line 10: the count on line 8 is 2 but 1 face line(s) follow")
    assert errors[2].startswith(f"{name}: line 12:") and "'x' is not a number" in errors[2]


def test_wider_path_outside_the_images_folder_is_refused(tmp_path, opened):
    write_image(tmp_path / "secret.jpg", 100, 80)
    root = tmp_path / "wider"
    gt = "../../../secret.jpg\n1\n1 1 20 20 0 0 0 0 0 0\n0--Parade/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n"
    images, report = imported(import_wider, wider_dataset(root, gt))

    assert list(images) == ["WIDER_train/images/0--Parade/b.jpg"]
    (error,) = messages(report, "error")
    assert "line 1" in error and "outside the images folder (refused)" in error
    assert tmp_path / "secret.jpg" not in opened


# --- FDDB ------------------------------------------------------------------------------------


def test_fddb_ellipse_box_by_hand():
    # a=20, b=10, θ=π/2 (major axis vertical): half-width sqrt(400·0 + 100·1) = 10,
    # half-height sqrt(400·1 + 100·0) = 20.
    assert ellipse_box(50, 40, 20, 10, math.pi / 2) == pytest.approx((40, 20, 60, 60))
    # θ=0: the major axis is horizontal: half-width 20, half-height 10.
    assert ellipse_box(50, 40, 20, 10, 0) == pytest.approx((30, 30, 70, 50))
    # θ=π/4: cos² = sin² = 1/2, both halves sqrt((400 + 100) / 2) = sqrt(250) = 15.8113883.
    assert ellipse_box(50, 40, 20, 10, math.pi / 4) == pytest.approx((34.1886117, 24.1886117, 65.8113883, 55.8113883))


def test_fddb_fold_files_negatives_and_malformed_records(tmp_path):
    write_image(tmp_path / "originalPics/2002/08/11/big/img_591.jpg", 100, 80)
    write_image(tmp_path / "originalPics/2002/08/11/big/img_600.jpg", 64, 48)
    write_image(tmp_path / "originalPics/2003/01/01/big/img_1.jpg", 64, 48)
    write_image(tmp_path / "originalPics/2003/01/01/big/img_2.jpg", 64, 48)
    write_image(tmp_path / "originalPics/2003/01/01/big/unlisted.jpg", 64, 48)
    write_text(
        tmp_path / "FDDB-folds/FDDB-fold-01-ellipseList.txt",
        """\
2002/08/11/big/img_591
2
20.000000 10.000000 1.570796326794897 50.000000 40.000000  1
12 6 0 20 15 1
2002/08/11/big/img_600
0
""",
    )
    write_text(
        tmp_path / "FDDB-folds/FDDB-fold-02-ellipseList.txt",
        """\
2003/01/01/big/img_1
x
20 10 0 30 30 1
2003/01/01/big/img_2
1
20 10 0
""",
    )
    write_text(tmp_path / "FDDB-folds/FDDB-fold-01.txt", "not an ellipse list: never read\n")
    images, report = imported(import_fddb, tmp_path)

    pics = "originalPics/2002/08/11/big/"
    assert list(images) == [pics + "img_591.jpg", pics + "img_600.jpg"]
    # (a=20, b=10, θ=π/2) at (50, 40): half-width 10, half-height 20 -> (40, 20, 60, 60).
    # (a=12, b=6, θ=0) at (20, 15): half-width 12, half-height 6 -> (8, 9, 32, 21).
    assert images[pics + "img_591.jpg"].boxes == approx_boxes([(40, 20, 60, 60), (8, 9, 32, 21)])
    assert images[pics + "img_600.jpg"] == Image(pics + "img_600.jpg", 64, 48)
    errors = messages(report, "error")
    assert len(errors) == 2
    assert errors[0].startswith("FDDB-folds/FDDB-fold-02-ellipseList.txt: line 2: face count 'x'")
    assert errors[1].startswith("FDDB-folds/FDDB-fold-02-ellipseList.txt: line 6: an ellipse line has 6 numbers")

    only_second, _ = imported(import_fddb, tmp_path, folds=[2])
    assert only_second == {}


# --- COCO ------------------------------------------------------------------------------------


def coco_file(images: list[dict], annotations: list[dict]) -> str:
    return json.dumps(
        {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "face"}, {"id": 2, "name": "person"}],
        }
    )


def test_coco_categories_crowd_and_path_outside_the_images_folder(tmp_path, opened):
    root = tmp_path / "ds"
    write_image(tmp_path / "secret.jpg", 100, 80)
    write_image(root / "images/a.jpg", 100, 80)
    write_image(root / "images/sub/b.jpg", 64, 48)
    write_image(root / "images/unlisted.jpg", 64, 48)
    write_text(
        root / "annotations/instances.json",
        coco_file(
            [
                {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                {"id": 2, "file_name": "sub/b.jpg", "width": 64, "height": 48},
                {"id": 3, "file_name": "../../secret.jpg", "width": 100, "height": 80},
            ],
            [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 15], "iscrowd": 0},
                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 1},
                {"id": 3, "image_id": 1, "category_id": 2, "bbox": [50, 10, 40, 60], "iscrowd": 0},
                {"id": 4, "image_id": 3, "category_id": 1, "bbox": [1, 1, 9, 9], "iscrowd": 0},
            ],
        ),
    )
    images, report = imported(import_coco, root)

    # [x, y, w, h] -> (x, y, x + w, y + h): [10, 20, 30, 15] -> (10, 20, 40, 35); the crowd
    # [0, 0, 5, 5] -> ignore (0, 0, 5, 5); the "person" box is not a face.
    assert images == {
        "images/a.jpg": Image("images/a.jpg", 100, 80, [(10, 20, 40, 35)], [(0, 0, 5, 5)]),
        "images/sub/b.jpg": Image("images/sub/b.jpg", 64, 48),
    }  # listed, no face: negative
    (error,) = messages(report, "error")
    assert error.startswith("annotations/instances.json: images[2]:") and "(refused)" in error
    assert tmp_path / "secret.jpg" not in opened

    people, _ = imported(import_coco, root, categories=["Person"])
    # [50, 10, 40, 60] -> (50, 10, 90, 70)
    assert people["images/a.jpg"].boxes == [(50, 10, 90, 70)] and people["images/a.jpg"].ignore == []

    with pytest.raises(ValueError, match="categories: none of \\['cat'\\]"):
        imported(import_coco, root, categories=["cat"])


def test_coco_bad_annotation_drops_its_image_and_unreadable_file_is_reported(tmp_path):
    write_image(tmp_path / "a.jpg", 100, 80)
    write_image(tmp_path / "b.jpg", 100, 80)
    write_text(
        tmp_path / "train.json",
        coco_file(
            [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, "2", 3, 4]},
                {"id": 2, "image_id": 2, "category_id": 1, "bbox": [90, 70, 20, 20]},
            ],
        ),
    )
    images, report = imported(import_coco, tmp_path)

    # b: (90, 70, 110, 90) on 100x80 -> clipped to (90, 70, 100, 80)
    assert images == {"b.jpg": Image("b.jpg", 100, 80, [(90, 70, 100, 80)])}
    assert len(messages(report, "error")) == 1 and "image a.jpg dropped" in messages(report, "error")[0]
    assert len(messages(report, "warning")) == 1 and "clipped" in messages(report, "warning")[0]

    write_text(tmp_path / "train.json", "{not json")
    images, report = imported(import_coco, tmp_path)
    assert images == {} and "annotation file unreadable" in messages(report, "error")[0]


# --- YOLO ------------------------------------------------------------------------------------


def test_yolo_ultralytics_layout_classes_negatives_and_out_of_range_values(tmp_path):
    write_image(tmp_path / "images/train/a.jpg", 100, 50)
    write_image(tmp_path / "images/train/b.jpg", 64, 48)  # no label file: a negative
    write_image(tmp_path / "images/train/c.jpg", 100, 50)
    write_text(tmp_path / "labels/train/a.txt", "0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.1 0.1\n\n")
    write_text(tmp_path / "labels/train/c.txt", "0 0.95 0.5 0.2 0.2\n")
    write_image(tmp_path / "images/train/d.jpg", 100, 50)
    write_text(tmp_path / "labels/train/d.txt", "0 0.5 0.5 0.2 0.2\n0 1.5 0.5 0.2 0.2\n")
    write_image(tmp_path / "images/train/e.jpg", 100, 50)
    write_text(tmp_path / "labels/train/e.txt", "0 320 240 50 60\n")
    write_text(tmp_path / "labels/train/orphan.txt", "0 0.5 0.5 0.1 0.1\n")
    write_text(tmp_path / "labels/train/classes.txt", "face\n")
    images, report = imported(import_yolo, tmp_path)

    # a: cx 0.5·100 = 50, cy 0.5·50 = 25, w 0.2·100 = 20, h 0.4·50 = 20 -> (40, 15, 60, 35);
    # the class-1 box is not a face.
    assert images["images/train/a.jpg"] == Image("images/train/a.jpg", 100, 50, [(40, 15, 60, 35)])
    assert images["images/train/b.jpg"] == Image("images/train/b.jpg", 64, 48)
    # c: x 0.85·100 = 85 .. 1.05·100 = 105, y 0.4·50 = 20 .. 0.6·50 = 30 -> clipped to (85, 20, 100, 30);
    # d: cx 1.5 -> x 140 .. 160: entirely outside; e: 320 240 50 60: pixels. A rejected box sets its
    # image aside (one face less would teach that face to be background).
    assert images["images/train/c.jpg"].boxes == approx_boxes([(85, 20, 100, 30)])
    assert "images/train/d.jpg" not in images and "images/train/e.jpg" not in images
    warnings, errors = messages(report, "warning"), messages(report, "error")
    assert len(warnings) == 2 and len(errors) == 2
    assert warnings[0].startswith("labels/train/c.txt: line 1:") and "clipped" in warnings[0]
    assert warnings[1].startswith("labels/train/orphan.txt: label file without an image")
    assert errors[0].startswith("labels/train/d.txt: label file dropped: line 2 (outside [0, 1]: cx=1.5)")
    assert "is outside images/train/d.jpg" in errors[0] and "images/train/d.jpg is dropped too" in errors[0]
    assert errors[1].startswith("labels/train/e.txt: label file dropped: line 1:") and "pixel coordinates?" in errors[1]
    assert "images/train/e.jpg is dropped too" in errors[1]

    ones, _ = imported(import_yolo, tmp_path, classes=[1])
    # class 1: 0.1 0.1 0.1 0.1 -> x 5 .. 15, y 2.5 .. 7.5
    assert ones["images/train/a.jpg"].boxes == approx_boxes([(5, 2.5, 15, 7.5)])


def test_yolo_side_by_side_polygon_and_malformed_line(tmp_path):
    write_image(tmp_path / "cam/x.png", 40, 20)
    write_text(tmp_path / "cam/x.txt", "0 0.25 0.5 0.5 0.5\n0 0.1 0.2 0.3 0.1 0.2 0.9\n")
    write_image(tmp_path / "cam/y.jpg", 40, 20)
    write_text(tmp_path / "cam/y.txt", "0 0.5 0.5 0.2\n")
    images, report = imported(import_yolo, tmp_path)

    # x: cx 10, cy 10, w 20, h 10 -> (0, 5, 20, 15); the polygon (0.1,0.2) (0.3,0.1) (0.2,0.9)
    # -> x 0.1·40 = 4 .. 0.3·40 = 12, y 0.1·20 = 2 .. 0.9·20 = 18.
    assert images == {"cam/x.png": Image("cam/x.png", 40, 20, approx_boxes([(0, 5, 20, 15), (4, 2, 12, 18)]))}
    (error,) = messages(report, "error")
    assert error.startswith("cam/y.txt: label file dropped: line 1: expected 'class cx cy w h'")
    assert "cam/y.jpg is dropped too" in error


# --- Pascal VOC ------------------------------------------------------------------------------


def voc_xml(filename: str, objects: str, width=100, height=80) -> str:
    return (
        f"<annotation><folder>JPEGImages</folder><filename>{filename}</filename>"
        f"<path>C:\\Users\\me\\{filename}</path>"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>{objects}</annotation>"
    )


def voc_object(name, xmin, ymin, xmax, ymax, difficult=0) -> str:
    return (
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><filename>c.jpg</filename><object><name>&lol2;</name></object></annotation>
"""


def test_voc_one_based_difficult_names_negatives_and_doctype(tmp_path, opened):
    root = tmp_path / "VOC"
    write_image(tmp_path / "secret.jpg", 100, 80)
    write_image(root / "JPEGImages/a.jpg", 100, 80)
    write_image(root / "JPEGImages/b.jpg", 64, 48)  # no XML: a negative
    write_image(root / "JPEGImages/c.jpg", 64, 48)
    write_image(root / "JPEGImages/d.jpg", 64, 48)
    write_text(
        root / "Annotations/a.xml",
        voc_xml(
            "a.jpg",
            voc_object("face", 11, 21, 40, 60)
            + voc_object("Face", 1, 1, 100, 80)
            + voc_object("face", 1, 1, 10, 10, difficult=1)
            + voc_object("person", 50, 10, 90, 70),
        ),
    )
    write_text(root / "Annotations/c.xml", BILLION_LAUGHS)
    write_text(root / "Annotations/d.xml", voc_xml("../../secret.jpg", voc_object("face", 1, 1, 5, 5)))
    images, report = imported(import_voc, root)

    # 1-based inclusive -> 0-based continuous: (xmin - 1, ymin - 1, xmax, ymax).
    # 11 21 40 60 -> (10, 20, 40, 60); 1 1 100 80 (the whole 100x80 image) -> (0, 0, 100, 80);
    # difficult 1 1 10 10 -> ignore (0, 0, 10, 10); "person" is not a face.
    assert images["JPEGImages/a.jpg"] == Image(
        "JPEGImages/a.jpg", 100, 80, [(10, 20, 40, 60), (0, 0, 100, 80)], [(0, 0, 10, 10)]
    )
    assert images["JPEGImages/b.jpg"] == Image("JPEGImages/b.jpg", 64, 48)
    assert "JPEGImages/c.jpg" not in images  # its faces are unknown
    assert images["JPEGImages/d.jpg"] == Image("JPEGImages/d.jpg", 64, 48)  # its XML refused: no label file
    errors = messages(report, "error")
    assert len(errors) == 2
    assert errors[0].startswith("Annotations/c.xml: label file dropped: XML with a DOCTYPE or ENTITY declaration")
    assert "JPEGImages/c.jpg is dropped too" in errors[0]
    assert errors[1].startswith("Annotations/d.xml:") and "outside the images folder (refused)" in errors[1]
    assert tmp_path / "secret.jpg" not in opened

    zero_based, _ = imported(import_voc, root, names=["person"], one_based=False)
    assert zero_based["JPEGImages/a.jpg"].boxes == [(50, 10, 90, 70)]


def test_voc_side_by_side_missing_filename_and_bad_bndbox(tmp_path):
    write_image(tmp_path / "shots/x.jpg", 64, 48)
    write_text(tmp_path / "shots/x.xml", voc_xml("renamed.jpg", voc_object("face", 2, 3, 20, 30), 64, 48))
    write_image(tmp_path / "shots/y.jpg", 64, 48)
    write_text(tmp_path / "shots/y.xml", voc_xml("y.jpg", voc_object("face", 2, 3, "twenty", 30), 64, 48))
    images, report = imported(import_voc, tmp_path)

    # 2 3 20 30 -> (1, 2, 20, 30)
    assert images == {"shots/x.jpg": Image("shots/x.jpg", 64, 48, [(1, 2, 20, 30)])}
    (warning,) = messages(report, "warning")
    assert "<filename> 'renamed.jpg' does not exist; paired by file name with shots/x.jpg" in warning
    (error,) = messages(report, "error")
    assert error.startswith("shots/y.xml: label file dropped: object 0 ('face'): <xmax> 'twenty' is not a number")


# --- the registry ----------------------------------------------------------------------------


def test_import_labels_picks_the_format_and_checks_options(tmp_path):
    write_image(tmp_path / "images/a.jpg", 100, 50)
    write_text(tmp_path / "labels/a.txt", "3 0.5 0.5 0.2 0.4\n")
    report = ProblemReport("labels")

    assert set(IMPORTERS) == {"labelme", "wider", "retinaface", "fddb", "coco", "yolo", "voc"}
    images = import_labels("yolo", tmp_path, report, classes=[3])
    assert images == [Image("images/a.jpg", 100, 50, [(40, 15, 60, 35)])]  # as in the YOLO test above
    assert import_labels("labelme", tmp_path, report, names=["face"]) == [Image("images/a.jpg", 100, 50)]
    with pytest.raises(ValueError, match="labels.format: unknown format 'pascal'"):
        import_labels("pascal", tmp_path, report)
    with pytest.raises(ValueError, match="labels.names: not an option of the 'yolo' format"):
        import_labels("yolo", tmp_path, report, names=["face"])
