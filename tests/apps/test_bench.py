"""facedet bench: rows for our model and the Haar peer, hand-checked AP, skipped peers, outputs."""

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from facedet import coco
from facedet.apps import bench, peers
from facedet.apps.sample import ASTRONAUT_FACE
from facedet.cli import main, parser
from facedet.model import build_net, weights

TINY = {"name": "single_face", "input_size": 64, "width": 0.125, "hidden": 16}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    weights.save(build_net(TINY), TINY, path, threshold=0.3)
    return path


def write_set(folder: Path, items: list[tuple[str, np.ndarray, list]]) -> Path:
    """A canonical COCO file ``folder/set.json`` with its RGB pictures in ``folder/images``."""
    images = []
    for name, rgb, boxes in items:
        (folder / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / "images" / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        images.append(coco.Image(name, rgb.shape[1], rgb.shape[0], boxes))
    coco.write(images, folder / "set.json")
    return folder / "set.json"


@pytest.fixture()
def quiet(tmp_path, monkeypatch):
    """Outside any facedet project and without MLFLOW_TRACKING_URI: no MLflow run is made."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_bench_writes_a_row_for_our_model_and_haar_and_skips_a_missing_peer(
    model, tmp_path, quiet, monkeypatch, capsys
):
    astronaut = skimage.data.astronaut()
    x1, y1, x2, y2 = ASTRONAUT_FACE
    coffee = cv2.resize(skimage.data.coffee(), (200, 133), interpolation=cv2.INTER_AREA)
    grey = np.full((120, 160, 3), 128, np.uint8)
    truth = write_set(
        tmp_path / "set",
        [
            ("astronaut.png", astronaut, [ASTRONAUT_FACE]),
            ("mirrored.png", np.ascontiguousarray(astronaut[:, ::-1]), [(512 - x2, y1, 512 - x1, y2)]),
            ("coffee.png", coffee, []),
            ("grey.png", grey, []),
        ],
    )
    # yunet "not installed": its module name points nowhere
    monkeypatch.setitem(peers.PEERS, "yunet", ("facedet_no_such_module", "yuface"))
    code = main(
        [
            "bench",
            "--images",
            str(truth),
            "--weights",
            str(model),
            "--peers",
            "yunet",
            "--threads",
            "1",
            "--repeats",
            "2",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "out" / "bench.json").read_text())
    rows = {row["name"]: row for row in report["detectors"]}
    assert list(rows) == ["single_face", "single_face (onnx)", "haar"]  # both engines by default
    assert rows["single_face (onnx)"]["ap50"] == rows["single_face"]["ap50"]
    for row in rows.values():
        assert 0.0 <= row["ap50"] <= 1.0 and 0.0 <= row["ap50_95"] <= 1.0
        assert row["ms_per_frame"] > 0 and row["faces_total"] == 3
        assert isinstance(row["fp_nonface"], int) and row["fp_nonface"] >= row["fp_nonface_unseen"] >= 0
    ours = rows["single_face"]
    assert ours["params"] == sum(p.numel() for p in build_net(TINY).parameters())
    assert ours["size_bytes"] == model.stat().st_size and ours["threshold"] == 0.3
    assert report["settings"]["n_images"] == 4 and report["settings"]["n_faces"] == 2
    assert report["skipped"] == [{"name": "yunet", "note": peers.missing("yunet")}]
    assert "not installed" in report["skipped"][0]["note"]
    table = (tmp_path / "out" / "bench.md").read_text()
    assert "| single_face |" in table and "| haar |" in table and "- yunet: skipped" in table
    assert "| single_face |" in capsys.readouterr().out


def test_haar_finds_the_astronaut_face_so_its_ap_on_that_one_image_is_one(tmp_path, quiet):
    # Hand-checked: the cascade returns one box, (177, 67, 270, 160); its IoU with the labelled face
    # (174, 72, 272, 168) is 93*88 / (93*93 + 98*96 - 93*88) = 0.83 >= 0.5, and there is no other box,
    # so precision is 1 at recall 1: AP@0.5 = 1.
    truth = write_set(tmp_path / "one", [("astronaut.png", skimage.data.astronaut(), [ASTRONAUT_FACE])])
    haar = peers.load("haar", threads=1)
    (found,) = haar(skimage.data.astronaut())
    assert found.box == (177.0, 67.0, 270.0, 160.0) and 0 < found.score <= 1
    report = bench.run_bench(
        bench.BenchSettings(images=truth, weights=[], peers=(), threads=1, repeats=1, out=tmp_path / "out")
    )
    (row,) = report["detectors"]
    assert row["name"] == "haar" and row["ap50"] == 1.0 and row["precision"] == 1.0 and row["recall"] == 1.0
    assert row["portraits"]["skimage astronaut"] == {"found": 1, "false_positives": 0}
    # It finds the astronaut and Grace Hopper but not the camera man's profile, and no box that is no face.
    assert "| 2/3 (0) |" in (tmp_path / "out/bench.md").read_text()
    assert report["skipped"][0]["name"] == "ours"  # no --weights and no results/train/model.safetensors here
    assert report["mlflow_run_id"] is None  # no project, no MLFLOW_TRACKING_URI: no MLflow run


def test_false_positives_on_the_sets_negatives_are_counted(tmp_path, quiet):
    # The cascade finds exactly one box on the astronaut (test above). Labelled once with its face and
    # once as a negative (no face, no ignore region), the second copy's box is the set's only false
    # positive, and it lies on a negative.
    astronaut = skimage.data.astronaut()
    truth = write_set(tmp_path / "set", [("face.png", astronaut, [ASTRONAUT_FACE]), ("negative.png", astronaut, [])])
    report = bench.run_bench(
        bench.BenchSettings(images=truth, weights=[], peers=(), threads=1, repeats=1, out=tmp_path / "out")
    )
    (row,) = report["detectors"]
    assert report["settings"]["n_negatives"] == 1
    assert (row["fp"], row["fp_on_negatives"], row["precision"], row["recall"]) == (1, 1, 0.5, 1.0)
    assert "| FP @ thr (on the 1 negatives) |" in (tmp_path / "out" / "bench.md").read_text()
    assert "| 1 (1) |" in (tmp_path / "out" / "bench.md").read_text()


def test_unknown_peers_are_explained_not_raised():
    assert "unknown peer" in peers.missing("mtcnn")
    assert peers.missing("haar") is None
    with pytest.raises(ValueError, match="unknown peer"):
        peers.load("mtcnn")


def test_an_onnx_model_file_is_named_from_its_metadata_and_runs_with_onnx_runtime(model, tmp_path):
    from facedet.inference.onnx import export_onnx

    export_onnx(model, tmp_path / "tiny.onnx")
    runner = bench.our_runner(tmp_path / "tiny.onnx", threads=1)
    assert runner.name == "single_face (onnx)" and runner.threshold == 0.3 and runner.params > 0
    assert runner.size_bytes == (tmp_path / "tiny.onnx").stat().st_size
    torch_runner = bench.our_runner(model, threads=1)
    picture = skimage.data.astronaut()
    (a,), (b,) = runner.detect(picture), torch_runner.detect(picture)  # single_face: one candidate each
    np.testing.assert_allclose(a.box, b.box, atol=0.05)


def test_the_bundled_model_is_taken_by_name_as_detect_takes_it():
    shipped = bench.our_runner("bundled", backend="onnx", threads=1)
    assert shipped.source.endswith("default.safetensors") and shipped.size_note == "onnx" and shipped.params > 0
    assert shipped.kind == "ours" and 0 < shipped.threshold < 1


def test_timing_takes_turns_so_load_from_elsewhere_slows_every_detector_alike():
    calls: list[str] = []
    frame = np.zeros((4, 4, 3), np.uint8)

    def detector(name: str, ms: float):
        def call(_: np.ndarray) -> None:
            calls.append(name)
            # Calls 7 to 28 overall (both detectors' first turn) stand for a burst of load from elsewhere.
            busy = 7 <= len(calls) <= 28
            time.sleep((ms + (20.0 if busy else 0.0)) / 1000.0)

        return call

    timings = bench.time_ms([detector("slow", 4.0), detector("fast", 1.0)], frame, repeats=40, turn=10)
    (slow_ms, *_), (fast_ms, *_) = timings
    turn = lambda name: [name] * 11  # noqa: E731 - one untimed call, then 10 timed ones
    assert calls == ["slow"] * 3 + ["fast"] * 3 + (turn("slow") + turn("fast")) * 4
    # The burst covers 10 of each one's 40 timed calls: the medians stay near 4 and 1 ms (timed one
    # after the other, slow would have had 22 of its 40 in the burst and a median over 20 ms).
    assert 4.0 <= slow_ms < 15.0 and 1.0 <= fast_ms < 10.0 and slow_ms > fast_ms
    # And the output says so: the burst made one turn of each 5x or more slower than the others, and
    # a sleeping detector waits (wall time without CPU time), as one starved by other processes does.
    assert all(t.turn_spread > 3 for t in timings)
    problems = bench.timing_problems(["slow", "fast"], timings, load=9.0, cpus=2)
    assert problems[0] == "the machine was busy (load average 9.0 on 2 CPUs)"
    assert any(p.startswith("slow waited for the CPU") for p in problems)
    assert "fast's turns differed up to" in " ".join(problems)
    assert bench.timing_problems(["x"], [bench.Timing(5.0, 4.9, 1.1)], load=0.5, cpus=2) == []


def test_bench_takes_model_files_after_one_weights_flag_or_several():
    one = parser().parse_args(["bench", "--weights", "a.safetensors", "b.onnx"])
    several = parser().parse_args(["bench", "--weights", "a.safetensors", "--weights", "b.onnx"])
    assert one.weights == several.weights == [Path("a.safetensors"), Path("b.onnx")]
