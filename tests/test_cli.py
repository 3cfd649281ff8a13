import json

import pytest

from facedet.cli import main, parser


@pytest.mark.parametrize("command", ["run", "sample", "import", "detect"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        parser().parse_args([command, "--help"])
    assert done.value.code == 0 and "usage: facedet" in capsys.readouterr().out


def test_import_real_labelme_folder(seed_webcam, tmp_path, capsys):
    assert main(["import", str(seed_webcam), "--out", str(tmp_path / "faces.json")]) == 0
    result = json.loads((tmp_path / "faces.json").read_text())
    assert len(result["images"]) == 76 and len(result["annotations"]) == 68
    assert result["categories"] == [{"id": 1, "name": "face", "supercategory": "face"}]
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
    assert main(["detect", str(tmp_path), "--weights", str(tmp_path / "none.safetensors"),
                 "--json", str(tmp_path / "o.json")]) == 2
    assert "none.safetensors" in capsys.readouterr().err
