"""FaceDetector: pixel coordinates, batches, threads, backends by file type; `facedet detect` on images."""

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import assert_same_faces
from torch import nn

from facedet.apps.detect import resolve_source
from facedet.cli import main
from facedet.inference.detector import FaceDetector
from facedet.model import build_net, weights
from facedet.video import gui_problem

TINY = {"name": "single_face", "input_size": 64, "width": 0.125, "hidden": 16}


def save_tiny(path: Path, **info) -> Path:
    torch.manual_seed(0)
    weights.save(build_net(TINY), TINY, path, **info)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("model") / "model.safetensors", threshold=0.3)


def picture(seed: int, width: int = 160, height: int = 120) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


class FixedBox(nn.Module):
    """A stand-in network: always one face at (0.25, 0.25)-(0.5, 0.75) of its input, score 0.9."""

    input_size = detect_size = 32
    resize = "stretch"

    def forward(self, images):
        return images.mean(dim=(1, 2, 3))

    def decode(self, outputs):
        row = torch.tensor([0.25, 0.25, 0.5, 0.75, 0.9])
        return row.expand(outputs.shape[0], 1, 5)


def test_boxes_are_in_pixels_of_the_given_picture():
    # A stretched input maps x by W and y by H: the same normalised box is twice as large in pixels
    # on a picture twice as large, whatever its aspect ratio.
    detector = FaceDetector(FixedBox())
    big, small = detector(picture(0, 640, 480)), detector(picture(0, 320, 240))
    assert big[0].box == (160.0, 120.0, 320.0, 360.0) and big[0].score == 0.9
    assert small[0].box == (80.0, 60.0, 160.0, 180.0)


def test_a_real_network_sees_the_same_input_at_both_sizes_and_gives_boxes_scaled_by_two(model):
    # 64 columns x 16 rows of blocks: INTER_AREA to 64 x 64 gives the same input from 640x480 and
    # 320x240 (block edges fall on output pixel edges), so the boxes differ by the factor 2 only.
    base = picture(1, 64, 16)
    big = cv2.resize(base, (640, 480), interpolation=cv2.INTER_NEAREST)
    small = cv2.resize(base, (320, 240), interpolation=cv2.INTER_NEAREST)
    detector = FaceDetector.load(model, threshold=0.0)
    (b,), (s,) = detector(big), detector(small)
    np.testing.assert_allclose(np.array(b.box), 2 * np.array(s.box), atol=0.05)
    assert abs(b.score - s.score) < 1e-3
    assert 0 <= b.box[0] <= b.box[2] <= 640 and 0 <= b.box[1] <= b.box[3] <= 480


def test_threshold_defaults_to_the_model_metadata_else_half(model, tmp_path):
    assert FaceDetector.load(model).threshold == 0.3
    assert FaceDetector.load(save_tiny(tmp_path / "plain.safetensors")).threshold == 0.5
    assert FaceDetector.load(model, threshold=0.1).threshold == 0.1
    assert FaceDetector.load(model).nms_iou == 0.4


def test_batch_equals_one_by_one(model):
    detector = FaceDetector.load(model, threshold=0.0, batch_size=3)
    images = [picture(i, 100 + 20 * i, 80) for i in range(5)]
    batch = detector.detect_batch(images)
    for image, faces in zip(images, batch):
        one = detector(image)
        assert len(one) == len(faces) == 1
        np.testing.assert_allclose(one[0].box, faces[0].box, atol=0.02)


def test_one_detector_serves_four_threads(model):
    detector = FaceDetector.load(model, threshold=0.0)
    images = [picture(10 + i, 120 + 8 * i, 90) for i in range(8)]
    expected = [detector(image) for image in images]
    got: dict[int, list] = {}
    errors = []

    def work(worker: int) -> None:
        try:
            for _ in range(5):
                for i in range(worker, len(images), 4):
                    faces = detector(images[i])
                    assert faces == expected[i], (i, faces, expected[i])
                    got[i] = faces
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and [got[i] for i in range(len(images))] == expected


def test_load_errors_are_clear(model, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(FileNotFoundError, match="none.safetensors"):
        FaceDetector.load(tmp_path / "none.safetensors")
    with pytest.raises(ValueError, match="models:/facedet@champion: not found in the MLflow store"):
        FaceDetector.load("models:/facedet@champion")
    with pytest.raises(ValueError, match="backend"):
        FaceDetector.load(model, backend="tensorrt")


def test_source_kinds(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "v.avi").write_bytes(b"x")
    assert resolve_source(tmp_path).kind == "folder"  # images are listed by extension
    assert resolve_source(tmp_path / "a.png").kind == "image"
    assert resolve_source(tmp_path / "v.avi").kind == "video"
    assert resolve_source("0").kind == "camera"
    assert resolve_source(str(tmp_path / "*.png")).kind == "glob"
    with pytest.raises(FileNotFoundError):
        resolve_source(tmp_path / "missing.png")


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.png", "b.jpg", "sub/c.png"]):
        cv2.imwrite(str(root / name), picture(20 + i, 96, 64))
    (root / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def test_detect_folder_reports_the_corrupt_image_and_keeps_the_rest(model, folder, tmp_path, capsys):
    out = tmp_path / "faces.json"
    assert (
        main(
            [
                "detect",
                str(folder),
                "--json",
                str(out),
                "--weights",
                str(model),
                "--threshold",
                "0",
                "--csv",
                str(tmp_path / "faces.csv"),
                "--out",
                str(tmp_path / "annotated"),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert [i["file"] for i in result["images"]] == ["a.png", "b.jpg", "sub/c.png"]
    assert [e["file"] for e in result["errors"]] == ["bad.jpg"] and result["errors"][0]["problem"]
    first = result["images"][0]
    assert (first["width"], first["height"]) == (96, 64) and set(first["faces"][0]) == {"box", "score"}
    rows = (tmp_path / "faces.csv").read_text().splitlines()
    assert rows[0] == "file,frame,x1,y1,x2,y2,score,landmarks" and len(rows) == 4 and rows[1].startswith("a.png,,")
    for name in ["a.png", "b.jpg", "sub/c.png"]:
        assert cv2.imread(str(tmp_path / "annotated" / name)).shape == (64, 96, 3)
    assert "3 images" in capsys.readouterr().out


def test_detect_glob_names_files_from_the_glob_root(model, folder, tmp_path):
    out = tmp_path / "faces.json"
    assert main(["detect", str(folder / "**" / "*.png"), "--json", str(out), "--weights", str(model)]) == 0
    assert [i["file"] for i in json.loads(out.read_text())["images"]] == ["a.png", "sub/c.png"]


def test_detect_single_image_keeps_the_old_contract(model, folder, tmp_path):
    out = tmp_path / "one.json"
    assert main(["detect", str(folder / "a.png"), "--json", str(out), "--weights", str(model), "--threshold", "0"]) == 0
    result = json.loads(out.read_text())
    assert result["errors"] == [] and [i["file"] for i in result["images"]] == ["a.png"]
    assert len(result["images"][0]["faces"]) == 1


def test_show_without_a_gui_says_so_instead_of_a_traceback(model, folder, tmp_path, capsys):
    if gui_problem() is None:
        pytest.skip("this machine can open windows")
    assert main(["detect", str(folder), "--weights", str(model), "--show"]) == 2
    err = capsys.readouterr().err
    assert "--show needs a window" in err and "--out" in err and "Traceback" not in err


def test_unknown_registry_model_is_a_clear_error_in_the_cli(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    assert (
        main(["detect", str(folder), "--weights", "models:/facedet@champion", "--json", str(tmp_path / "x.json")]) == 2
    )
    assert "not found in the MLflow store" in capsys.readouterr().err


def test_the_bundled_model_works_right_after_install(tmp_path, monkeypatch):
    """Outside a project (no results/train), detect uses the model shipped in the package."""
    import skimage.data

    from facedet.evaluation.metrics import box_iou
    from facedet.inference.backends import exported_sibling
    from facedet.inference.detector import BUNDLED_WEIGHTS, default_weights

    monkeypatch.chdir(tmp_path)
    assert default_weights() == BUNDLED_WEIGHTS
    # The package ships the bundled weights' own ONNX export, so detection runs on ONNX Runtime.
    assert exported_sibling(BUNDLED_WEIGHTS) == BUNDLED_WEIGHTS.with_suffix(".onnx")
    detector = FaceDetector.load()
    assert detector.model_info["backend"] == "onnx"
    faces = detector(skimage.data.astronaut())
    # Eileen Collins' face in scikit-image's astronaut picture, boxed by hand: (174, 72, 272, 168).
    assert faces and box_iou([faces[0].box], [(174, 72, 272, 168)])[0, 0] > 0.5


def test_same_faces_tolerates_another_engines_rounding_only():
    """The comparison the engine and CPU tests use: a face near the threshold may come and go, a
    confident face may not, and neither may a moved box or a changed score."""
    a = [{"box": [10, 10, 50, 50], "score": 0.9}, {"box": [100, 10, 140, 50], "score": 0.5004}]
    assert_same_faces(a, [{"box": [10, 10, 50, 50.01], "score": 0.9002}], threshold=0.5)
    with pytest.raises(AssertionError):
        assert_same_faces(a, [a[1]], threshold=0.5)  # the confident face is missing
    with pytest.raises(AssertionError):
        assert_same_faces(a, [{"box": [12, 10, 52, 50], "score": 0.9}], threshold=0.5)  # IoU 0.905
    with pytest.raises(AssertionError):
        assert_same_faces(a, [{"box": [10, 10, 50, 50], "score": 0.8}], threshold=0.5)


def test_detect_without_outputs_prints_the_boxes_and_json_dash_writes_them_to_stdout(model, folder, capsys):
    args = ["detect", str(folder / "a.png"), "--weights", str(model), "--threshold", "0"]
    assert main([*args, "--json", "-"]) == 0
    printed = capsys.readouterr()
    faces = json.loads(printed.out)["images"][0]["faces"]  # stdout is the JSON alone
    assert len(faces) == 1 and "1 faces in 1 images" in printed.err
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["file", "face", "x1", "y1", "x2", "y2", "score"]
    row = lines[1].split()
    assert row[:2] == ["a.png", "1"]
    assert [float(v) for v in row[2:6]] == pytest.approx(faces[0]["box"], abs=0.051)
    assert float(row[6]) == pytest.approx(faces[0]["score"], abs=5e-4)


@pytest.mark.parametrize("value", ["2", "-0.1", "nan"])
def test_a_threshold_outside_0_1_is_refused_in_one_line(model, folder, value, capsys):
    assert main(["detect", str(folder / "a.png"), "--weights", str(model), "--threshold", value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "threshold" in err and "[0, 1]" in err


def test_the_detector_takes_a_path_or_an_array(model, folder):
    detector = FaceDetector.load(model, threshold=0)
    rgb = cv2.cvtColor(cv2.imread(str(folder / "a.png")), cv2.COLOR_BGR2RGB)
    assert detector(folder / "a.png") == detector(str(folder / "a.png")) == detector(rgb)


def test_version(capsys):
    import facedet

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"facedet {facedet.__version__}"


def test_a_full_disk_is_one_line_and_the_previous_json_stays_whole(model, folder, tmp_path, capsys):
    """/dev/full: a real device that answers every write with ENOSPC."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    assert main(["detect", str(folder / "a.png"), "--weights", str(model), "--json", "/dev/full"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert "disk is full writing /dev/full" in err.splitlines()[-1]
    # A regular file is replaced only once the new one is complete.
    out = tmp_path / "faces.json"
    out.write_text('{"images": []}\n')
    partial = out.with_name(".faces.json.partial")
    partial.symlink_to("/dev/full")  # the new content goes to a full disk
    assert main(["detect", str(folder / "a.png"), "--weights", str(model), "--json", str(out)]) == 2
    assert out.read_text() == '{"images": []}\n' and "disk is full" in capsys.readouterr().err


def test_sigterm_partway_through_a_folder_keeps_what_was_detected(model, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1500):
        cv2.imwrite(str(folder / f"{i:04d}.png"), picture(i % 7, 96, 64))
    out = tmp_path / "faces.json"
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    process = subprocess.Popen(
        ["facedet", "detect", str(folder), "--weights", str(model), "--json", str(out), "--out", str(tmp_path / "a")],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert "facedet detect: model" in process.stderr.readline()  # loaded; the folder is next
    deadline = time.monotonic() + 60
    while not (tmp_path / "a").is_dir() and time.monotonic() < deadline:  # the first pictures are done
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    done = json.loads(out.read_text())["images"]
    assert 0 < len(done) < 1500
    assert [i["file"] for i in done] == [f"{i:04d}.png" for i in range(len(done))]
