"""`facedet prelabel`: Haar proposals on a real face, where files go, never overwriting, importable."""

import json

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from facedet.apps.prelabel import model_proposer, peer_proposer, prelabel
from facedet.boxes import box_iou
from facedet.cli import main
from facedet.label_formats.labelme import import_folder
from facedet.label_formats.labelme_pairing import label_candidates
from facedet.problems import ProblemReport

ASTRONAUT_FACE = (174, 72, 272, 168)  # by eye: Eileen Collins' face in skimage's astronaut (512x512)


@pytest.fixture(scope="module")
def haar():
    return peer_proposer("haar")


def astronaut(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def flat(path, level=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((120, 160, 3), level, np.uint8))
    return path


def test_haar_finds_the_astronauts_face_and_writes_labelme_into_labels(tmp_path, haar):
    astronaut(tmp_path / "ds/images/astronaut.jpg")
    flat(tmp_path / "ds/images/wall.jpg")
    summary = prelabel(tmp_path / "ds/images", haar, progress=False)
    target = tmp_path / "ds/labels/astronaut.json"
    assert summary.written == [target] and summary.faces == 1 and summary.no_face == 1
    doc = json.loads(target.read_text())
    assert doc["version"] == "5.4.1" and doc["imagePath"] == "../images/astronaut.jpg" and doc["imageData"] is None
    assert (doc["imageWidth"], doc["imageHeight"]) == (512, 512)
    (shape,) = doc["shapes"]
    assert shape["label"] == "face" and shape["shape_type"] == "rectangle"
    box = [v for point in shape["points"] for v in point]
    assert box_iou(np.array(box), np.array(ASTRONAUT_FACE))[0, 0] > 0.7
    assert not (tmp_path / "ds/labels/wall.json").exists()  # nothing proposed: no file, still a negative

    # What it wrote is what the importer reads.
    report = ProblemReport("import")
    images = {i.file_name: i for i in import_folder(tmp_path / "ds", report)}
    assert not report.problems and images["images/wall.jpg"].boxes == []
    assert images["images/astronaut.jpg"].boxes == [tuple(float(v) for v in box)]

    # Again: the astronaut is labelled now, nothing is written.
    again = prelabel(tmp_path / "ds/images", haar, progress=False)
    assert again.written == [] and again.labelled == 1 and again.no_face == 1


def test_beside_the_images_when_there_is_no_images_folder(tmp_path, haar):
    astronaut(tmp_path / "pics/a/astronaut.png")
    summary = prelabel(tmp_path / "pics", haar, progress=False)
    assert summary.written == [tmp_path / "pics/a/astronaut.json"]
    assert json.loads(summary.written[0].read_text())["imagePath"] == "astronaut.png"


def test_never_overwrites_and_respects_the_importers_pairing(tmp_path, haar):
    folder = tmp_path / "flat"
    astronaut(folder / "x.jpg")
    astronaut(folder / "y.jpg")
    astronaut(folder / "z.jpg")
    # y.json labels x.jpg (by imagePath): x is labelled, y is not, but y.json must not be overwritten.
    (folder / "y.json").write_text(json.dumps({"shapes": [], "imagePath": "x.jpg"}))
    # A label file elsewhere in the dataset that names z.jpg labels it too.
    (folder / "notes").mkdir()
    (folder / "notes/whatever.json").write_text(json.dumps({"shapes": [], "imagePath": "../z.jpg"}))
    before = (folder / "y.json").read_text()
    summary = prelabel(folder, haar, progress=False)
    assert summary.written == [] and summary.labelled == 2 and summary.exists == 1
    assert (folder / "y.json").read_text() == before


def test_label_files_that_cannot_be_read_are_reported_not_replaced(tmp_path, haar):
    astronaut(tmp_path / "ds/images/a.jpg")
    (tmp_path / "ds/labels").mkdir(parents=True)
    (tmp_path / "ds/labels/a.json").write_text("{broken")
    (tmp_path / "ds/images/bad.jpg").write_text("not an image")
    summary = prelabel(tmp_path / "ds/images", haar, progress=False)
    assert summary.written == [] and (tmp_path / "ds/labels/a.json").read_text() == "{broken"
    problems = dict(summary.problems)
    assert "labels/a.json cannot be used" in problems["images/a.jpg"]
    assert "not an image" in problems["images/bad.jpg"]


def test_label_candidates():
    assert label_candidates("/d/images/s/x.jpg") == [
        __import__("pathlib").Path("/d/labels/s/x.json"),
        __import__("pathlib").Path("/d/images/s/x.json"),
    ]
    assert [p.as_posix() for p in label_candidates("/d/pics/x.png")] == ["/d/pics/x.json"]


def test_cli_prelabel_with_haar_and_with_a_model(tmp_path, capsys):
    astronaut(tmp_path / "ds/images/astronaut.jpg")
    assert main(["prelabel", str(tmp_path / "ds/images"), "--peer", "haar"]) == 0
    assert "1 LabelMe files written (1 faces proposed)" in capsys.readouterr().out
    assert main(["prelabel", str(tmp_path / "ds/images"), "--weights", str(tmp_path / "none.safetensors")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_model_proposer_writes_importable_files(tmp_path):
    from test_detect import save_tiny

    weights = save_tiny(tmp_path / "tiny.safetensors")
    astronaut(tmp_path / "ds/images/astronaut.jpg")
    summary = prelabel(tmp_path / "ds/images", model_proposer(weights, threshold=0.0), progress=False)
    assert len(summary.written) == 1  # an untrained model at threshold 0 proposes something
    report = ProblemReport("import")
    (image,) = import_folder(tmp_path / "ds", report)
    assert len(image.boxes) == summary.faces >= 1 and not report.errors
