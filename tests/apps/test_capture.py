"""`facedet capture` from a generated video: counts, intervals, uuid1 names, clean stops, no preview here."""

import uuid

import cv2
import pytest
from helpers import write_video

from facedet.apps.capture import capture, next_steps
from facedet.cli import main
from facedet.video import VideoError, gui_problem


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "clip.avi", 12, size=(80, 60), fps=10.0)


def test_count_with_interval_zero_takes_consecutive_frames_with_uuid1_names(video, tmp_path):
    result = capture(video, tmp_path / "images", count=5, interval=0, preview=False)
    assert result.stopped == "count" and len(result.files) == 5 and result.frames_read == 5
    assert sorted(result.files) == sorted((tmp_path / "images").iterdir())
    for path in result.files:
        assert path.suffix == ".jpg" and uuid.UUID(path.stem).version == 1
        assert cv2.imread(str(path)).shape == (60, 80, 3)
    # In capture order, the pictures are frames 0..4 (grey 0, 10, ..., 40).
    assert [round(cv2.imread(str(p)).mean() / 10) for p in result.files] == [0, 1, 2, 3, 4]


def test_interval_is_video_time_for_a_file(video, tmp_path):
    result = capture(video, tmp_path / "out", count=100, interval=0.2, preview=False)  # 10 FPS: every 2nd frame
    assert [round(cv2.imread(str(p)).mean() / 10) for p in result.files] == [0, 2, 4, 6, 8, 10]


def test_a_video_shorter_than_count_stops_cleanly_at_its_end(video, tmp_path):
    result = capture(video, tmp_path / "out", count=50, interval=0, preview=False)
    assert result.stopped == "end" and len(result.files) == 12 == len(list((tmp_path / "out").iterdir()))


def test_ctrl_c_keeps_what_was_taken(video, tmp_path):
    def interrupt(path, n):
        if n == 3:
            raise KeyboardInterrupt

    result = capture(video, tmp_path / "out", count=10, interval=0, preview=False, on_saved=interrupt)
    assert result.stopped == "interrupted" and len(result.files) == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in result.files)  # no .part


@pytest.mark.skipif(gui_problem() is None, reason="this OpenCV can show windows")
def test_headless_preview_is_explained_and_skipped_unless_asked_for(video, tmp_path):
    messages = []
    result = capture(video, tmp_path / "auto", count=2, interval=0, say=messages.append)
    assert len(result.files) == 2 and "opencv-python" in result.preview_note
    assert any("capturing without it" in m for m in messages)
    with pytest.raises(VideoError, match="--preview needs a window: .*opencv-python.*--no-preview"):
        capture(video, tmp_path / "asked", count=2, preview=True)
    assert not (tmp_path / "asked").exists()  # failed before anything was taken


def test_cli_capture_prints_each_picture_and_the_next_steps(video, tmp_path, capsys):
    out = tmp_path / "data" / "images"
    assert (
        main(["capture", "--source", str(video), "--out", str(out), "--count", "3", "--interval", "0", "--no-preview"])
        == 0
    )
    text = capsys.readouterr().out
    assert "3/3" in text and "done: 3 pictures" in text
    assert f"labelme {out.as_posix()} --output {(tmp_path / 'data' / 'labels').as_posix()} --nodata" in text
    assert "dvc repro" in text and len(list(out.iterdir())) == 3
    assert main(["capture", "--source", str(tmp_path / "missing.avi"), "--out", str(out), "--no-preview"]) == 2
    assert "missing.avi: no such video file" in capsys.readouterr().err


def test_next_steps_follow_the_layout():
    assert "labelme data/images --output data/labels --nodata" in next_steps("data/images")
    assert "dvc add data && dvc repro" in next_steps("data/images")
    assert "labelme data/images/s2 --output data/labels/s2 --nodata" in next_steps("data/images/s2")
    assert "labelme pics --nodata" in next_steps("pics")
