"""facedet.label_formats.labelme: LabelMe folders -> images with face boxes.

Every LabelMe file here is written by hand in tmp_path, next to small real images; the expected
boxes are written by hand too. One test reads the real seed dataset when it is present.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED_WEBCAM
from helpers import imported, problems, rect, shape, write_image, write_labelme
from PIL import Image as PILImage
from PIL import ImageOps

from facedet.coco import Image
from facedet.images import IMAGE_EXTENSIONS
from facedet.label_formats.labelme import import_folder
from facedet.problems import ProblemReport

SEED = SEED_WEBCAM


# --- helpers ---------------------------------------------------------------------------------


def load(root: Path, **kwargs) -> tuple[dict[str, Image], ProblemReport]:
    return imported(import_folder, root, **kwargs)


def only_problem(report: ProblemReport, level: str, file: str, *words: str) -> str:
    assert [p.file for p in report.problems] == [file], report.problems
    (problem,) = report.problems
    assert problem.level == level, problem
    for word in words:
        assert word in problem.problem, problem
    return problem.problem


# --- layouts and pairing ---------------------------------------------------------------------


def test_images_and_labels_folders_with_windows_image_path_and_negatives(tmp_path):
    write_image(tmp_path / "images" / "a.jpg")
    write_image(tmp_path / "images" / "b.png", 32, 20)  # no JSON: a negative
    write_image(tmp_path / "images" / "C.JPG")  # extensions are case-insensitive
    write_labelme(tmp_path / "labels" / "a.json", "..\\images\\a.jpg", [rect((10, 5), (30, 25))])
    write_labelme(
        tmp_path / "labels" / "C.json", "..\\images\\C.JPG", [rect((1, 2), (3, 4)), rect((40.5, 10.25), (60, 47))]
    )

    images, report = load(tmp_path)

    assert report.problems == []
    assert list(images) == ["images/C.JPG", "images/a.jpg", "images/b.png"]
    assert images["images/a.jpg"] == Image("images/a.jpg", 64, 48, [(10, 5, 30, 25)])
    assert images["images/C.JPG"].boxes == [(1, 2, 3, 4), (40.5, 10.25, 60, 47)]
    assert images["images/b.png"] == Image("images/b.png", 32, 20, [])


def test_side_by_side_and_nested_with_embedded_image_data_never_decoded(tmp_path, monkeypatch):
    jpg = write_image(tmp_path / "day1" / "cam" / "a.jpg")
    embedded = base64.b64encode(jpg.read_bytes()).decode()
    write_labelme(tmp_path / "day1" / "cam" / "a.json", "a.jpg", [rect((2, 3), (12, 13))], image_data=embedded)
    write_image(tmp_path / "b.webp", 20, 10)
    write_labelme(tmp_path / "b.json", "b.webp", [rect((0, 0), (20, 10))], 20, 10)

    def refuse(*args, **kwargs):
        raise AssertionError("imageData must not be decoded")

    monkeypatch.setattr(base64, "b64decode", refuse)
    monkeypatch.setattr(base64, "standard_b64decode", refuse)
    images, report = load(tmp_path)

    assert report.problems == []
    assert images == {
        "b.webp": Image("b.webp", 20, 10, [(0, 0, 20, 10)]),
        "day1/cam/a.jpg": Image("day1/cam/a.jpg", 64, 48, [(2, 3, 12, 13)]),
    }


def test_image_path_that_does_not_exist_falls_back_to_the_file_name(tmp_path):
    write_image(tmp_path / "x" / "near.jpg")
    write_labelme(tmp_path / "x" / "near.json", "..\\old\\near.jpg", [rect((1, 1), (5, 5))])
    write_image(tmp_path / "images" / "far.png")  # the only "far.*" anywhere
    write_labelme(tmp_path / "labels" / "far.json", "renamed.png", [rect((2, 2), (6, 6))])
    write_image(tmp_path / "images" / "win.jpg")  # labels saved on another drive than the images
    write_labelme(tmp_path / "labels" / "win.json", "D:\\shoot\\win.jpg", [rect((3, 3), (7, 7))])

    images, report = load(tmp_path)

    assert images["x/near.jpg"].boxes == [(1, 1, 5, 5)]
    assert images["images/far.png"].boxes == [(2, 2, 6, 6)]
    assert images["images/win.jpg"].boxes == [(3, 3, 7, 7)]
    assert report.errors == []
    warnings = dict(problems(report, "warning"))
    assert warnings.keys() == {"x/near.json", "labels/far.json", "labels/win.json"}
    assert "paired by file name with x/near.jpg" in warnings["x/near.json"]
    assert "absolute Windows path" in warnings["labels/win.json"]


def test_missing_image_is_an_error_that_mentions_embedded_image_data(tmp_path):
    write_image(tmp_path / "images" / "kept.jpg")
    write_labelme(
        tmp_path / "labels" / "ghost.json",
        "..\\images\\ghost.jpg",
        [rect((1, 1), (5, 5))],
        image_data=base64.b64encode(b"\xff\xd8 not decoded anyway").decode(),
    )
    write_labelme(tmp_path / "labels" / "gone.json", "..\\images\\gone.jpg", [])

    images, report = load(tmp_path)

    assert images == {"images/kept.jpg": Image("images/kept.jpg", 64, 48, [])}
    errors = dict(problems(report, "error"))
    assert errors.keys() == {"labels/ghost.json", "labels/gone.json"}
    assert "label file's image is missing" in errors["labels/ghost.json"]
    assert "imageData" in errors["labels/ghost.json"]
    assert "imageData" not in errors["labels/gone.json"]


def test_two_label_files_for_one_image_keep_the_first(tmp_path):
    write_image(tmp_path / "images" / "a.jpg")
    write_labelme(tmp_path / "labels" / "a.json", "..\\images\\a.jpg", [rect((1, 1), (5, 5))])
    write_labelme(tmp_path / "labels" / "a_copy.json", "..\\images\\a.jpg", [rect((9, 9), (19, 19))])

    images, report = load(tmp_path)

    assert images["images/a.jpg"].boxes == [(1, 1, 5, 5)]
    only_problem(report, "error", "labels/a_copy.json", "images/a.jpg", "labels/a.json")


# --- security --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image_path", ["../../etc/passwd", "..\\..\\etc\\passwd", "/etc/passwd", "../outside/secret.jpg", "link/secret.jpg"]
)
def test_image_path_outside_the_dataset_is_refused_and_nothing_outside_is_read(tmp_path, monkeypatch, image_path):
    root = tmp_path / "data"
    write_image(tmp_path / "outside" / "secret.jpg")
    (root / "sub").mkdir(parents=True)
    os.symlink(tmp_path / "outside", root / "link", target_is_directory=True)  # not walked
    write_image(root / "fine.jpg")
    write_labelme(root / "evil.json", image_path, [rect((1, 1), (5, 5))])

    opened = []
    real_open = PILImage.open
    monkeypatch.setattr(
        PILImage, "open", lambda fp, *a, **k: opened.append(Path(getattr(fp, "name", fp))) or real_open(fp, *a, **k)
    )
    images, report = load(root)

    assert images == {"fine.jpg": Image("fine.jpg", 64, 48, [])}
    only_problem(report, "error", "evil.json", "points outside the dataset folder (refused)")
    assert opened == [root / "fine.jpg"]


def test_links_and_absolute_paths_that_stay_in_the_dataset_are_fine(tmp_path):
    cached = tmp_path / ".dvc" / "cache" / "files" / "md5" / "3f" / "9a1c"  # a DVC cache of type symlink
    write_image(cached.with_suffix(".jpg")).rename(cached)
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    os.symlink(cached, root / "images" / "a.jpg")
    write_labelme(root / "labels" / "a.json", "..\\images\\a.jpg", [rect((1, 1), (5, 5))])
    write_image(root / "images" / "b.jpg")
    write_labelme(root / "labels" / "b.json", str(root / "images" / "b.jpg"), [rect((2, 2), (6, 6))])

    images, report = load(root)

    assert report.problems == []
    assert images == {
        "images/a.jpg": Image("images/a.jpg", 64, 48, [(1, 1, 5, 5)]),
        "images/b.jpg": Image("images/b.jpg", 64, 48, [(2, 2, 6, 6)]),
    }


def test_refused_label_file_drops_the_image_it_sits_next_to(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_labelme(tmp_path / "a.json", "../../etc/passwd", [rect((1, 1), (5, 5))])

    images, report = load(tmp_path)

    assert images == {}
    only_problem(report, "error", "a.json", "refused", "a.jpg is dropped too")


# --- shapes ----------------------------------------------------------------------------------


def test_shapes_become_normalised_boxes(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_labelme(
        tmp_path / "a.json",
        "a.jpg",
        [
            rect((30, 25), (10, 5)),  # dragged up-left
            rect((30, 5), (10, 25)),  # dragged down-left
            shape("polygon", [(12, 4), (40, 10), (25, 30), (8, 20)]),
            {**shape("polygon", [(1, 2), (3, 2), (2, 9)]), "shape_type": None},  # LabelMe's default
            shape("circle", [(20, 20), (20, 28)]),  # centre, a point on the edge
            shape("mask", [(5, 6), (15, 16)]),
        ],
    )

    images, report = load(tmp_path)

    assert report.problems == []
    assert images["a.jpg"].boxes == [
        (10, 5, 30, 25),
        (10, 5, 30, 25),
        (8, 4, 40, 30),
        (1, 2, 3, 9),
        (12, 12, 28, 28),
        (5, 6, 15, 16),
    ]


def test_shapes_without_extent_are_skipped_with_a_warning(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_labelme(
        tmp_path / "a.json",
        "a.jpg",
        [
            shape("point", [(5, 5)]),
            shape("line", [(1, 1), (9, 9)]),
            shape("linestrip", [(1, 1), (9, 3), (4, 8)]),
            rect((2, 2), (4, 4)),
        ],
    )

    images, report = load(tmp_path)

    assert images["a.jpg"].boxes == [(1, 1, 9, 8), (2, 2, 4, 4)]
    assert report.errors == []
    messages = [m for _, m in problems(report, "warning")]
    assert len(messages) == 3
    assert "'point'" in messages[0] and "skipped" in messages[0]
    assert "'line'" in messages[1] and "skipped" in messages[1]
    assert "'linestrip'" in messages[2] and "box around its points" in messages[2]


def test_only_the_requested_labels_count(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_labelme(
        tmp_path / "a.json",
        "a.jpg",
        [
            rect((1, 1), (5, 5), "Face "),
            rect((2, 2), (6, 6), "FACE"),
            rect((3, 3), (7, 7), "person"),
            rect((4, 4), (8, 8), "hand"),
        ],
    )

    images, report = load(tmp_path)
    assert images["a.jpg"].boxes == [(1, 1, 5, 5), (2, 2, 6, 6)]
    assert report.problems == []

    images, _ = load(tmp_path, labels=["Person", "hand"])
    assert images["a.jpg"].boxes == [(3, 3, 7, 7), (4, 4, 8, 8)]
    images, _ = load(tmp_path, labels="hand")
    assert images["a.jpg"].boxes == [(4, 4, 8, 8)]


def test_boxes_crossing_the_border_are_clipped(tmp_path):
    write_image(tmp_path / "images" / "a.jpg")  # 64 x 48
    write_labelme(
        tmp_path / "labels" / "a.json",
        "..\\images\\a.jpg",
        [
            rect((50, -5), (70, 20)),  # crosses the top and right borders
            rect((1, 1), (5, 5)),
            rect((0, 0), (64.0000001, 48)),  # float noise on the border: clipped silently
        ],
    )

    images, report = load(tmp_path)

    assert images["images/a.jpg"].boxes == [(50, 0, 64, 20), (1, 1, 5, 5), (0, 0, 64, 48)]
    (warning,) = problems(report, "warning")
    assert warning[0] == "labels/a.json"
    assert "clipped to (50, 0, 64, 20)" in warning[1] and "images/a.jpg" in warning[1]
    assert problems(report, "error") == []


@pytest.mark.parametrize(
    "bad, why",
    [
        (((70, 50), (80, 60)), "is outside images/a.jpg (64x48)"),
        (((10, 10), (10, 30)), "has no area"),
        (((1, 1), (1e308, 30)), "is far outside images/a.jpg (64x48)"),
    ],
)
def test_a_rejected_box_sets_its_image_aside(tmp_path, bad, why):
    write_image(tmp_path / "images" / "a.jpg")  # 64 x 48
    write_image(tmp_path / "images" / "b.jpg")
    write_labelme(tmp_path / "labels" / "a.json", "../images/a.jpg", [rect((1, 1), (5, 5)), rect(*bad)])

    images, report = load(tmp_path)

    assert list(images) == ["images/b.jpg"]  # a.jpg is not kept as a picture with one face less
    (error,) = problems(report, "error")
    assert error[0] == "labels/a.json" and "shape 1: box" in error[1] and why in error[1]
    assert "its image images/a.jpg is dropped too" in error[1]


# --- broken label files ----------------------------------------------------------------------


BROKEN = {
    "not JSON": ("this is not json {", "not valid JSON"),
    "a list": ("[1, 2]", "not an object"),
    "no shapes": ('{"version": "5.4.1", "imagePath": "../images/a.jpg"}', "no 'shapes'"),
    "shapes not a list": ('{"shapes": {"label": "face"}, "imagePath": "../images/a.jpg"}', "'shapes' is not a list"),
    "shape not an object": ('{"shapes": ["face"], "imagePath": "../images/a.jpg"}', "shape 0 is not an object"),
    "no label": ('{"shapes": [{"points": [[1, 1], [5, 5]]}], "imagePath": "../images/a.jpg"}', "no label"),
    "points not a list": (
        '{"shapes": [{"label": "face", "points": 5}], "imagePath": "../images/a.jpg"}',
        "'points' is not a list",
    ),
    "point not a pair": (
        '{"shapes": [{"label": "face", "points": [[1, 1, 1], [5, 5]]}], "imagePath": "../images/a.jpg"}',
        "not an [x, y] pair",
    ),
    "string coordinate": (
        '{"shapes": [{"label": "face", "points": [["1", 1], [5, 5]]}], "imagePath": "../images/a.jpg"}',
        "not a number",
    ),
    "NaN coordinate": (
        '{"shapes": [{"label": "face", "points": [[NaN, 1], [5, 5]]}], "imagePath": "../images/a.jpg"}',
        "not a number",
    ),
    "huge integer coordinate": (
        '{"shapes": [{"label": "face", "points": [[1%s, 1], [5, 5]]}], "imagePath": "../images/a.jpg"}' % ("0" * 400),
        "not a number",
    ),
    "nested 100000 deep": ("[" * 100_000 + "]" * 100_000, "not usable JSON"),
    "imagePath not a string": ('{"shapes": [], "imagePath": 7}', "imagePath is not a string"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_label_file_drops_it_and_its_image(tmp_path, case):
    text, words = BROKEN[case]
    write_image(tmp_path / "images" / "a.jpg")
    write_image(tmp_path / "images" / "b.jpg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.json").write_text(text)

    images, report = load(tmp_path)

    assert list(images) == ["images/b.jpg"]  # a.jpg's faces are unknown: not made a negative
    only_problem(report, "error", "labels/a.json", words, "images/a.jpg is dropped too")


def test_unexpected_failure_on_one_file_is_reported_not_raised(tmp_path, monkeypatch):
    import facedet.label_formats.labelme as labelme

    write_image(tmp_path / "a.jpg")
    write_labelme(tmp_path / "a.json", "a.jpg", [rect((1, 1), (5, 5))])

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(labelme, "_boxes", boom)
    images, report = load(tmp_path)

    assert images == {}
    only_problem(report, "error", "a.json", "unexpected failure (RuntimeError: a bug)", "a.jpg is dropped too")


def test_missing_optional_keys_are_fine(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_labelme(
        tmp_path / "a.json",
        "a.jpg",
        [{"label": "face", "points": [[1, 2], [3, 4]], "shape_type": "rectangle"}],
        version=None,
        flags=None,
        imageData=None,
        imageWidth=None,
        imageHeight=None,
    )

    images, report = load(tmp_path)

    assert images["a.jpg"].boxes == [(1, 2, 3, 4)]
    assert report.problems == []


def test_stated_image_size_that_disagrees(tmp_path):
    write_image(tmp_path / "half.jpg")  # 64 x 48, labelled on a 128 x 96 copy
    write_labelme(tmp_path / "half.json", "half.jpg", [rect((20, 10), (60, 50))], 128, 96)
    write_image(tmp_path / "odd.jpg")  # 64 x 48, said to be 100 x 48: not a uniform scale
    write_labelme(tmp_path / "odd.json", "odd.jpg", [rect((2, 2), (8, 8))], 100, 48)

    images, report = load(tmp_path)

    assert images["half.jpg"].boxes == [(10, 5, 30, 25)]
    assert images["odd.jpg"].boxes == [(2, 2, 8, 8)]
    assert report.errors == []
    warnings = dict(problems(report, "warning"))
    assert "scaled by 0.5" in warnings["half.json"]
    assert "kept as they are" in warnings["odd.json"]


# --- images ----------------------------------------------------------------------------------


def exif_rotated(path: Path) -> Path:
    """A 60 x 40 JPEG as stored, with EXIF orientation 6: shown 40 wide and 60 high."""
    exif = PILImage.Exif()
    exif[0x0112] = 6
    return write_image(path, 60, 40, exif=exif)


def test_exif_rotated_image_has_its_displayed_size(tmp_path):
    exif_rotated(tmp_path / "r.jpg")
    write_labelme(tmp_path / "r.json", "r.jpg", [rect((5, 10), (35, 50))], 40, 60)  # as LabelMe shows it

    images, report = load(tmp_path)

    assert report.problems == []
    assert images["r.jpg"] == Image("r.jpg", 40, 60, [(5, 10, 35, 50)])


def test_box_labelled_without_the_exif_rotation_is_rotated(tmp_path):
    path = exif_rotated(tmp_path / "r.jpg")  # stored: the bright quarter is x 0-30, y 0-20
    write_labelme(tmp_path / "r.json", "r.jpg", [rect((0, 0), (30, 20))], 60, 40)  # stored frame

    images, report = load(tmp_path)

    (box,) = images["r.jpg"].boxes
    assert box == (20, 0, 40, 30)  # by hand: rotated 90 degrees clockwise into a 40 x 60 image
    shown = np.asarray(ImageOps.exif_transpose(PILImage.open(path)).convert("L"))
    assert shown.shape == (60, 40)
    assert shown[2:28, 22:38].min() > 150 and shown[32:, :].max() < 150  # the box is the bright part
    only_problem(report, "warning", "r.json", "EXIF", "rotated")


@pytest.mark.parametrize("content", [b"this is a text file, not a JPEG\n", b""])
def test_unreadable_image_is_dropped_with_an_error(tmp_path, content):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "bad.jpg").write_bytes(content)
    write_labelme(tmp_path / "labels" / "bad.json", "..\\images\\bad.jpg", [rect((1, 1), (5, 5))])
    write_image(tmp_path / "images" / "good.png")

    images, report = load(tmp_path)

    assert list(images) == ["images/good.png"]
    only_problem(report, "error", "images/bad.jpg", "image dropped")


def test_image_extensions():
    assert IMAGE_EXTENSIONS == (".jpg", ".jpeg", ".png", ".bmp", ".webp")


# --- the real seed dataset -------------------------------------------------------------------


def test_real_labelme_seed_dataset():
    if not SEED.is_dir():
        pytest.skip(f"{SEED} is not here")
    images, report = load(SEED)

    assert report.problems == []
    assert len(images) == 76
    faces = [i for i in images.values() if i.boxes]
    assert len(faces) == 68 and all(len(i.boxes) == 1 for i in faces)
    assert sum(not i.boxes for i in images.values()) == 8
    for image in images.values():
        assert (image.width, image.height) == (640, 480)
        for x1, y1, x2, y2 in image.boxes:
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
