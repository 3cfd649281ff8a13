"""Videos: box smoothing and tracking, frames in, `facedet detect video --json --csv --out`."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facedet.apps.detect import Results, detect_video
from facedet.cli import main
from facedet.coco import Detection
from facedet.model import build_net, weights
from facedet.video import BoxSmoother, VideoSource, camera_index, iter_frames

TINY = {"name": "single_face", "input_size": 64, "width": 0.125, "hidden": 16}
FRAMES, SIZE = 12, (96, 72)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    weights.save(build_net(TINY), TINY, path)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A small MJPG .avi (the pip OpenCV builds write MJPG and mp4v, not H.264): a square moving."""
    path = tmp_path_factory.mktemp("video") / "video.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    assert writer.isOpened()
    for i in range(FRAMES):
        frame = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
        cv2.rectangle(frame, (10 + 3 * i, 20), (40 + 3 * i, 50), (200, 180, 160), -1)
        writer.write(frame)
    writer.release()
    return path


def face(x1, y1, x2, y2, score=0.9) -> Detection:
    return Detection((float(x1), float(y1), float(x2), float(y2)), score)


def test_ema_step_by_hand():
    smoother = BoxSmoother(alpha=0.5)
    assert smoother.update([face(10, 10, 50, 50)]) == [face(10, 10, 50, 50)]  # a new track passes through
    (out,) = smoother.update([face(20, 20, 60, 60, 0.8)])
    assert out.box == (15.0, 15.0, 55.0, 55.0) and out.score == 0.8


def test_smoothing_lowers_frame_to_frame_jitter():
    rng = np.random.default_rng(0)
    raw = [face(*(np.array([100, 100, 200, 200]) + rng.normal(0, 4, 4))) for _ in range(60)]
    smoother = BoxSmoother(alpha=0.3)
    smooth = [smoother.update([d])[0] for d in raw]

    def jitter(seq):
        return float(np.var(np.diff(np.array([d.box for d in seq]), axis=0)))

    assert jitter(smooth) < 0.5 * jitter(raw)
    assert len(smoother.tracks) == 1


def test_new_faces_start_tracks_and_lost_ones_go_after_max_missed_frames():
    smoother = BoxSmoother(max_missed=2)
    smoother.update([face(0, 0, 10, 10)])
    out = smoother.update([face(1, 1, 11, 11), face(100, 100, 140, 140)])  # second face: new, unchanged
    assert out[1] == face(100, 100, 140, 140) and len(smoother.tracks) == 2
    assert [t.id for t in smoother.tracks] == [0, 1]
    for missed in (1, 2):  # only the second face is seen: the first survives max_missed frames...
        smoother.update([face(100, 100, 140, 140)])
        assert len(smoother.tracks) == 2 and smoother.tracks[0].missed == missed
    smoother.update([face(100, 100, 140, 140)])  # ...and is gone on the next
    assert [t.id for t in smoother.tracks] == [1]
    smoother.update([face(0, 0, 10, 10)])  # back again: a new track, not the old one
    assert [t.id for t in smoother.tracks] == [1, 2] and smoother.tracks[0].missed == 1


def test_matching_is_one_to_one_by_best_iou():
    smoother = BoxSmoother(alpha=0.5)
    smoother.update([face(0, 0, 10, 10), face(4, 0, 14, 10)])
    out = smoother.update([face(4, 0, 14, 10)])  # exactly the second: it is the match, no change
    assert out == [face(4, 0, 14, 10)]
    assert smoother.tracks[0].missed == 1 and smoother.tracks[1].missed == 0
    assert smoother.update([]) == [] and all(t.missed >= 1 for t in smoother.tracks)


def test_iter_frames_gives_rgb_frames_and_releases(video):
    frames = list(iter_frames(video))
    assert len(frames) == FRAMES and frames[0].shape == (SIZE[1], SIZE[0], 3) and frames[0].dtype == np.uint8
    r, g, b = frames[0][35, 25].astype(int)  # the square is BGR (200, 180, 160) -> RGB (160, 180, 200)
    assert abs(r - 160) < 12 and abs(b - 200) < 12
    with VideoSource(video) as source:
        assert source.frame_count == FRAMES and source.fps == pytest.approx(10)
        next(iter(source))
    assert not source.capture.isOpened()
    assert camera_index(0) == 0 and camera_index("1") == 1 and camera_index(str(video)) is None


def test_missing_video_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        list(iter_frames(tmp_path / "nope.mp4"))


def test_detect_video_writes_json_csv_and_an_annotated_video(model, video, tmp_path, capsys):
    out_json, out_csv, out_dir = tmp_path / "v.json", tmp_path / "v.csv", tmp_path / "annotated"
    assert (
        main(
            [
                "detect",
                str(video),
                "--weights",
                str(model),
                "--threshold",
                "0",
                "--json",
                str(out_json),
                "--csv",
                str(out_csv),
                "--out",
                str(out_dir),
            ]
        )
        == 0
    )
    result = json.loads(out_json.read_text())
    assert [i["file"] for i in result["images"]] == [f"video.avi#{i}" for i in range(FRAMES)]
    assert all((i["width"], i["height"]) == SIZE and len(i["faces"]) == 1 for i in result["images"])
    with open(out_csv) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["frame"]) for r in rows] == list(range(FRAMES)) and rows[0]["file"] == "video.avi"
    assert float(rows[3]["x1"]) == result["images"][3]["faces"][0]["box"][0]
    readback = cv2.VideoCapture(str(out_dir / "video.mp4"))
    count = 0
    while readback.read()[0]:
        count += 1
    readback.release()
    assert count == FRAMES


def test_max_frames_stops_early(model, video, tmp_path):
    out = tmp_path / "five.json"
    assert main(["detect", str(video), "--weights", str(model), "--json", str(out), "--max-frames", "5"]) == 0
    assert len(json.loads(out.read_text())["images"]) == 5


def test_video_boxes_are_smoothed_unless_asked_not_to(video):
    rng = np.random.default_rng(1)
    jittery = [face(*(np.array([20, 20, 50, 50]) + rng.normal(0, 3, 4))) for _ in range(FRAMES)]
    detector = iter(jittery * 2)

    def run(smooth):
        results = Results()
        assert detect_video(lambda frame: [next(detector)], video, results, smooth=smooth, progress=False) == FRAMES
        return np.array([i["faces"][0]["box"] for i in results.data["images"]])

    smoothed, raw = run(True), run(False)
    np.testing.assert_allclose(raw, [d.box for d in jittery], atol=0.006)
    assert np.allclose(smoothed[0], raw[0]) and np.var(np.diff(smoothed, axis=0)) < np.var(np.diff(raw, axis=0))


def test_the_annotated_video_carries_no_fps_counter(model, video, tmp_path):
    """Frames per second are this machine's speed, shown in the live window only: the written frame
    is the picture with its boxes and nothing in the corner where the counter was drawn."""
    from facedet.video import annotate

    out_json, out_video = tmp_path / "v.json", tmp_path / "v.mp4"
    args = ["detect", str(video), "--weights", str(model), "--threshold", "0", "--no-smooth"]
    assert main([*args, "--json", str(out_json), "--out", str(out_video)]) == 0
    first = json.loads(out_json.read_text())["images"][0]["faces"]
    faces = [Detection(tuple(f["box"]), f["score"]) for f in first]
    frame = next(iter_frames(video))
    expected = annotate(frame, faces).astype(int)
    readback = cv2.VideoCapture(str(out_video))
    ok, written = readback.read()
    readback.release()
    assert ok
    corner = (slice(0, 20), slice(0, 90))  # where annotate(..., fps) writes "12.3 FPS"
    differ = np.abs(written.astype(int)[corner] - expected[corner]).max(axis=2) > 100
    assert differ.sum() < 5


def test_an_unreadable_video_is_in_the_json_errors(model, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video at all" * 10)
    out = tmp_path / "v.json"
    assert main(["detect", str(broken), "--weights", str(model), "--json", str(out)]) == 1
    errors = json.loads(out.read_text())["errors"]
    assert [e["file"] for e in errors] == [str(broken)] and errors[0]["problem"]
    assert f"{broken}: " in capsys.readouterr().err
