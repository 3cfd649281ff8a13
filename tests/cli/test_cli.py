import json

import pytest

from facedet.cli import main, parser


@pytest.mark.parametrize("command", ["run", "sample", "import", "export-labels", "detect"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        parser().parse_args([command, "--help"])
    assert done.value.code == 0 and "usage: facedet" in capsys.readouterr().out


def test_import_real_labelme_folder(seed_webcam, tmp_path, capsys):
    assert main(["import", str(seed_webcam), "--out", str(tmp_path / "faces.json")]) == 0
    result = json.loads((tmp_path / "faces.json").read_text())
    assert len(result["images"]) == 76 and len(result["annotations"]) == 68
    assert [{k: c[k] for k in ("id", "name")} for c in result["categories"]] == [{"id": 1, "name": "face"}]
    report = json.loads((tmp_path / "faces.report.json").read_text())
    assert report["summary"]["negatives"] == 8 and report["problems"] == []


def test_import_strict_fails_naming_the_bad_file_and_default_mode_keeps_the_rest(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"")
    (src / "b.json").write_text("{not json")
    assert main(["import", str(src), "--out", str(tmp_path / "out.json"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "a.jpg" in err and "b.json" in err
    assert not (tmp_path / "out.json").exists()
    assert main(["import", str(src), "--out", str(tmp_path / "out.json")]) == 0
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert {p["file"] for p in report["problems"]} == {"a.jpg", "b.json"}


def test_detect_without_a_model_says_which_file_is_missing(tmp_path, capsys):
    assert (
        main(
            [
                "detect",
                str(tmp_path),
                "--weights",
                str(tmp_path / "none.safetensors"),
                "--json",
                str(tmp_path / "o.json"),
            ]
        )
        == 2
    )
    assert "none.safetensors" in capsys.readouterr().err


def test_import_other_formats_with_options_and_export_back(tmp_path):
    import cv2
    import numpy as np

    (tmp_path / "ds/images").mkdir(parents=True)
    (tmp_path / "ds/labels").mkdir()
    cv2.imwrite(str(tmp_path / "ds/images/a.jpg"), np.zeros((100, 200, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "ds/images/b.jpg"), np.zeros((100, 200, 3), np.uint8))
    # class 0 at centre (0.5, 0.5), size (0.2, 0.4) of 200x100 -> x 80..120, y 30..70; class 1 is not a face.
    (tmp_path / "ds/labels/a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.1 0.1\n")
    out = tmp_path / "faces.json"
    assert main(["import", str(tmp_path / "ds"), "--format", "yolo", "--option", "classes=[0]", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [a["bbox"] for a in result["annotations"]] == [[80.0, 30.0, 40.0, 40.0]]
    assert len(result["images"]) == 2  # b.jpg has no txt: a negative
    assert main(["import", str(tmp_path / "ds"), "--format", "yolo", "--option", "nope=1", "--out", str(out)]) == 2

    assert (
        main(
            [
                "export-labels",
                str(out),
                "--to",
                "labelme",
                "--images",
                str(tmp_path / "ds"),
                "--out",
                str(tmp_path / "lm"),
            ]
        )
        == 0
    )
    exported = json.loads(next((tmp_path / "lm").rglob("*.json")).read_text())
    assert exported["shapes"][0]["points"] == [[80.0, 30.0], [120.0, 70.0]]


def test_detect_says_and_records_which_model_run_and_threshold_it_used(tmp_path, capsys):
    import cv2
    import numpy as np

    from facedet.inference.detector import BUNDLED_WEIGHTS
    from facedet.model import weights
    from facedet.model.weights import read_metadata

    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((64, 80, 3), 128, np.uint8))
    assert (
        main(
            [
                "detect",
                str(tmp_path / "a.jpg"),
                "--weights",
                "bundled",  # the word train.init also takes
                "--threshold",
                "0.7",
                "--json",
                str(tmp_path / "o.json"),
            ]
        )
        == 0
    )
    metadata = read_metadata(BUNDLED_WEIGHTS)
    model = json.loads((tmp_path / "o.json").read_text())["model"]
    # The bundled model averages five runs' weights (docs/bundled-model.md): it is no one MLflow run.
    assert model["file"] == str(BUNDLED_WEIGHTS) and model["mlflow_run_id"] is None
    assert (model["threshold"], model["threshold_source"], model["backend"]) == (0.7, "given", "onnx")
    assert f"model {BUNDLED_WEIGHTS}; no MLflow run; threshold 0.7 (given)" in capsys.readouterr().err

    # A model the train stage wrote names its run.
    net, _ = weights.load(BUNDLED_WEIGHTS)
    weights.save(net, metadata["model"], tmp_path / "trained.safetensors", threshold=0.6, mlflow_run_id="0123abcd")
    assert main(["detect", str(tmp_path / "a.jpg"), "--weights", str(tmp_path / "trained.safetensors")]) == 0
    assert f"model {tmp_path / 'trained.safetensors'}; MLflow run 0123abcd; threshold 0.6 (the model's)" in (
        capsys.readouterr().err
    )

    assert (
        main(["detect", str(tmp_path / "a.jpg"), "--weights", str(BUNDLED_WEIGHTS), "--json", str(tmp_path / "o.json")])
        == 0
    )
    model = json.loads((tmp_path / "o.json").read_text())["model"]
    assert (model["threshold"], model["threshold_source"]) == (metadata["threshold"], "the model's")


def test_run_help_examples_are_valid_overrides(capsys):
    from conftest import ROOT

    from facedet.config import compose_config

    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    examples = text.split("Hydra overrides, e.g. ")[1].split(" options:")[0].split()
    assert examples and compose_config(examples, root=ROOT)


def test_a_typo_in_a_run_override_is_one_line(capsys):
    assert main(["run", "train", "train.lrr=0.1"]) == 2
    err = capsys.readouterr().err
    assert (
        err == "facedet run: error: config key 'train.lrr' is not known (did you mean 'train.lr'?); "
        "the known keys are those of conf/\n"
    )
