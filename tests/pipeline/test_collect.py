"""The collect stage's sources: folders and videos together, dedupe, min_size, the manifest's origin."""

import json

import cv2
import numpy as np
import pytest
from conftest import ROOT
from helpers import write_faces, write_image, write_video
from omegaconf import OmegaConf

from facedet.config import ConfigError, compose_config
from facedet.images import file_sha256
from facedet.pipeline import collect, labels
from facedet.video import frame_indices


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    return tmp_path


def configured(sources=None, *overrides):
    cfg = compose_config(list(overrides), root=ROOT)
    if sources is not None:
        cfg.collect.sources = OmegaConf.create(sources)
    return cfg


def outputs(project):
    manifest = json.loads((project / "results/collect/manifest.json").read_text())
    report = json.loads((project / "results/collect/report.json").read_text())
    return {e["source"]: e for e in manifest}, {p["file"]: p for p in report["problems"]}, report["summary"]


def test_default_is_one_recursive_folder_source_paths_data_with_origin(project):
    cfg = configured()
    assert OmegaConf.to_container(cfg.collect.sources, resolve=True) == [
        {
            "type": "folder",
            "path": "data",
            "recursive": True,
            "extensions": [".jpg", ".jpeg", ".png", ".bmp", ".webp"],
            "min_size": 32,
            "dedupe": True,
        }
    ]
    write_image(project / "data/a.jpg", seed=0)
    write_image(project / "data/deep/er/b.PNG", seed=1)
    (project / "data/notes.txt").write_text("not collected: not an image extension")
    collect.run(cfg)
    manifest, problems, summary = outputs(project)
    assert set(manifest) == {"a.jpg", "deep/er/b.PNG"} and not problems
    b = manifest["deep/er/b.PNG"]
    assert b["file"] == "deep/er/b.jpg" and (b["width"], b["height"], b["source_width"], b["source_height"]) == (
        64,
        48,
        64,
        48,
    )
    assert b["origin"] == {"type": "folder", "path": "data"}
    assert b["sha256"] == file_sha256(project / "data/deep/er/b.PNG")
    assert summary["images"] == 2 and summary["folder_images"] == 2


def test_frame_indices_by_hand():
    assert frame_indices(10, every=3) == [0, 3, 6, 9]
    assert frame_indices(10, every=20) == [0]
    assert frame_indices(10, frames=4) == [0, 3, 6, 9]  # 9 * (0, 1/3, 2/3, 1)
    assert frame_indices(10, frames=3) == [0, 5, 9]  # 4.5 rounds half up
    assert frame_indices(7, frames=3) == [0, 3, 6]
    assert frame_indices(5, frames=8) == [0, 1, 2, 3, 4]  # more wanted than there are: all
    assert frame_indices(100, frames=1) == [0]
    assert frame_indices(0, frames=3) == []


def test_folder_and_video_sources_together(project):
    write_image(project / "data/a.jpg", seed=0)
    write_video(project / "videos/clip.avi", 10)  # outside data: relative to the project root
    write_video(project / "data/more/walk.avi", 10)  # a folder of videos, inside data
    cfg = configured(
        [
            {"type": "folder", "path": "data"},
            {"type": "video", "path": "videos/clip.avi", "every": 3},
            {"type": "video", "path": "data/more", "frames": 3},
        ]
    )
    collect.run(cfg)
    manifest, problems, summary = outputs(project)
    assert not problems
    files = sorted(e["file"] for e in manifest.values())
    assert files == [
        "a.jpg",
        "clip/frame_000000.jpg",
        "clip/frame_000003.jpg",
        "clip/frame_000006.jpg",
        "clip/frame_000009.jpg",
        "walk/frame_000000.jpg",
        "walk/frame_000005.jpg",
        "walk/frame_000009.jpg",
    ]
    clip3 = manifest["videos/clip.avi#3"]
    assert clip3["origin"] == {"type": "video", "path": "videos/clip.avi", "frame": 3}
    assert (clip3["width"], clip3["height"]) == (64, 48)
    assert manifest["more/walk.avi#5"]["origin"] == {"type": "video", "path": "more/walk.avi", "frame": 5}
    # The frame really is frame 5: the video's frame i is grey level 10 * i (MJPG: nearly).
    picture = cv2.imread(str(project / "results/collect/images/walk/frame_000005.jpg"))
    assert abs(float(picture.mean()) - 50) < 3
    assert summary["video_images"] == 7 and summary["folder_images"] == 1
    # The labels stage still works: the folder image is a negative, unlabelled frames stay out.
    labels.run(cfg)
    report = json.loads((project / "results/labels/report.json").read_text())
    assert report["summary"]["images"] == 1


def test_dedupe_keeps_the_labelled_copy_and_names_the_duplicate(project):
    write_image(project / "data/images/a.jpg", 80, 60, seed=0)
    (project / "data/backup").mkdir()
    (project / "data/backup/a_copy.jpg").write_bytes((project / "data/images/a.jpg").read_bytes())  # sorts first
    write_faces(project / "data/labels/a.json", "..\\images\\a.jpg", [[10, 10, 40, 40]], 80, 60)
    cfg = configured()
    collect.run(cfg)
    manifest, problems, _ = outputs(project)
    assert set(manifest) == {"images/a.jpg"}
    assert problems["backup/a_copy.jpg"]["level"] == "warning"
    assert "duplicate of images/a.jpg" in problems["backup/a_copy.jpg"]["problem"]
    labels.run(cfg)  # the face is not lost to the unlabelled copy
    report = json.loads((project / "results/labels/report.json").read_text())
    assert report["summary"]["faces"] == 1 and report["summary"]["images"] == 1
    # dedupe: false keeps both
    collect.run(configured([{"type": "folder", "path": "data", "dedupe": False}]))
    manifest, problems, _ = outputs(project)
    assert set(manifest) == {"images/a.jpg", "backup/a_copy.jpg"} and not problems


def test_min_size_and_bad_files_are_set_aside_by_name(project):
    write_image(project / "data/tiny.jpg", 40, 20, seed=0)  # shorter side 20 < 32
    write_image(project / "data/edge.jpg", 32, 32, seed=1)  # exactly 32: kept
    write_image(project / "data/good.jpg", seed=2)
    (project / "data/png_named.jpg").write_bytes(cv2.imencode(".png", np.full((48, 64, 3), 7, np.uint8))[1].tobytes())
    (project / "data/empty.jpg").write_bytes(b"")
    (project / "data/text.jpg").write_text("not an image")
    (project / "data/truncated.jpg").write_bytes(
        cv2.imencode(".jpg", np.zeros((480, 640, 3), np.uint8))[1].tobytes()[:300]
    )
    write_video(project / "videos/ok.avi", 3)
    (project / "videos/broken.avi").write_text("not a video")
    cfg = configured([{"type": "folder", "path": "data"}, {"type": "video", "path": "videos", "every": 1}])
    collect.run(cfg)
    manifest, problems, _ = outputs(project)
    assert set(manifest) == {
        "edge.jpg",
        "good.jpg",
        "png_named.jpg",
        "videos/ok.avi#0",
        "videos/ok.avi#1",
        "videos/ok.avi#2",
    }
    assert set(problems) == {"tiny.jpg", "empty.jpg", "text.jpg", "truncated.jpg", "videos/broken.avi"}
    assert "too small (40x20 px; collect.sources[0].min_size is 32)" in problems["tiny.jpg"]["problem"]
    assert "0 bytes" in problems["empty.jpg"]["problem"] and "not an image" in problems["text.jpg"]["problem"]
    assert "truncated" in problems["truncated.jpg"]["problem"]
    assert "cannot be read as a video" in problems["videos/broken.avi"]["problem"]
    assert all(p["level"] == "error" for p in problems.values())


def test_source_config_errors_name_the_key(project):
    write_image(project / "data/a.jpg", seed=0)
    cases = [
        ([{"type": "sample", "path": "data"}], "collect.sources[0].type", "facedet sample data"),
        (
            [{"type": "folder", "path": "data"}, {"type": "video", "path": "v.mp4", "every": 2, "frames": 3}],
            "collect.sources[1]",
            "either every",
        ),
        ([{"type": "video", "path": "v.mp4", "every": 0}], "collect.sources[0].every", "positive integer"),
        ([{"type": "folder", "path": "data", "min_szie": 3}], "collect.sources[0].min_szie", "no such key"),
        ([{"type": "folder", "path": "data", "extensions": []}], "collect.sources[0].extensions", "non-empty"),
        ([], "collect.sources", "non-empty list"),
    ]
    for sources, key, words in cases:
        with pytest.raises(ConfigError) as err:
            collect.run(configured(sources))
        assert f"'{key}'" in str(err.value) and words in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"collect.sources\[1\].path: nowhere"):
        collect.run(configured([{"type": "folder", "path": "data"}, {"type": "folder", "path": "nowhere"}]))


def test_a_folder_outside_data_collects_under_its_name(project):
    write_image(project / "data/a.jpg", seed=0)
    write_image(project / "elsewhere/pics/b.jpg", seed=1)
    collect.run(configured([{"type": "folder", "path": "data"}, {"type": "folder", "path": "elsewhere/pics"}]))
    manifest, problems, _ = outputs(project)
    assert manifest["elsewhere/pics/b.jpg"]["file"] == "pics/b.jpg" and manifest["a.jpg"]["file"] == "a.jpg"
    assert (project / "results/collect/images/pics/b.jpg").is_file() and not problems
