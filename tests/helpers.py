"""Builders the tests share: pictures, and LabelMe files as labelme 5.4.1 writes them (independent of
facedet's own writer, so that the readers are checked against files facedet did not make)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parents[1]


def write_image(
    path: Path, width: int = 64, height: int = 48, *, seed: int | None = None, exif: PILImage.Exif | None = None
) -> Path:
    """An RGB picture in the format its suffix names: a grey one with a lighter top-left quarter, or
    random noise (``seed``: pictures that differ); ``exif``: EXIF data to store with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if seed is not None:
        pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    else:
        pixels = np.full((height, width, 3), 90, np.uint8)
        pixels[: height // 2, : width // 2] = 200  # something to look at
    image = PILImage.fromarray(pixels)
    image.save(path, **({"exif": exif} if exif is not None else {}))
    return path


def rect(p1, p2, label: str = "face") -> dict:
    """A LabelMe rectangle from corner ``p1`` to ``p2`` (as dragged: any order)."""
    return {
        "label": label,
        "points": [list(p1), list(p2)],
        "group_id": None,
        "description": "",
        "shape_type": "rectangle",
        "flags": {},
        "mask": None,
    }


def write_labelme(
    path: Path, image_path: str | None, shapes: list, width=64, height=48, image_data: str | None = None, **changes
) -> Path:
    """A file as LabelMe 5.4.1 writes it, ``imagePath`` as given (``changes`` replaces or, with None,
    removes keys)."""
    data = {
        "version": "5.4.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": image_data,
        "imageHeight": height,
        "imageWidth": width,
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def shape(kind: str, points, label: str = "face", group_id: int | None = None) -> dict:
    """A LabelMe shape of any ``shape_type`` (``point``, ``polygon``, ...) through ``points``."""
    return {
        **rect((0, 0), (1, 1), label),
        "shape_type": kind,
        "points": [list(p) for p in points],
        "group_id": group_id,
    }


def write_faces(path: Path, image_path: str, boxes: list, width: int = 64, height: int = 48) -> Path:
    """A LabelMe file with a ``face`` rectangle per (x1, y1, x2, y2) box."""
    return write_labelme(path, image_path, [rect(box[:2], box[2:]) for box in boxes], width, height)


def write_video(path: Path, frames: int, size=(64, 48), fps=10.0) -> Path:
    """An MJPG .avi whose frame i is a flat grey of level 10 * i (so every frame differs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 10 * i, np.uint8))
    writer.release()
    return path


def project_copy(tmp_path: Path, overrides: list[str]) -> Path:
    """A copy of the project (conf, code, dvc.yaml) with params.yaml composed like `dvc exp run -S`."""
    from dvc.utils.hydra import compose_and_dump

    project = tmp_path / "project"
    project.mkdir()
    for name in ("conf", "src", "dvc.yaml"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, project / name)
    compose_and_dump(project / "params.yaml", str(project / "conf"), None, "config", "", overrides)
    return project


def sh(project: Path, *cmd: str) -> str:
    """Run a command in ``project`` with this environment's tools (no outside MLflow store); its output."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", "MPLBACKEND": "Agg"}
    env |= {f"GIT_{who}_{what}": v for who in ("AUTHOR", "COMMITTER") for what, v in (("NAME", "t"), ("EMAIL", "t@t"))}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def write_text(path: Path, text: str) -> Path:
    """A text file (a label file written by hand), its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def imported(importer, src: Path, **options) -> tuple[dict, object]:
    """(file name -> Image, the ProblemReport) of a label importer run on ``src``; checks that the
    importer returns its images sorted by file name."""
    from facedet.problems import ProblemReport

    report = ProblemReport("labels")
    images = importer(src, report, **options)
    assert [i.file_name for i in images] == sorted(i.file_name for i in images)
    return {i.file_name: i for i in images}, report


def problems(report, level: str) -> list[tuple[str, str]]:
    """(file, problem) of each problem of ``level`` ("error", "warning") in a ProblemReport."""
    return [(p.file, p.problem) for p in report.problems if p.level == level]


def messages(report, level: str) -> list[str]:
    """ "file: problem" for each problem of ``level`` in a ProblemReport."""
    return [f"{file}: {problem}" for file, problem in problems(report, level)]
