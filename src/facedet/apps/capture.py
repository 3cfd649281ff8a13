"""Collect pictures from a webcam (or a video file): the seed tutorial's first step, done right.

The tutorial took 30 webcam frames 0.5 s apart into ``data/images/<uuid1>.jpg``; `capture`
does the same with a countdown before it starts, a live preview that shows the count, and a clean
stop on q (in the preview) or Ctrl-C that keeps every picture taken so far (each file is written
whole, or not at all).

- ``source``: a camera index (``0``) or a video file. For a video file ``interval`` is measured in
  the video's time (frame number / its FPS) and the frames are read as fast as they decode, with no
  countdown; the capture ends early, keeping what it has, when the video ends.
- Preview: ``preview=None`` (the default) shows it when OpenCV can open a window and otherwise says
  why not and goes on without it (the pip build ``opencv-python-headless`` has no GUI: install
  ``opencv-python`` for the window); ``preview=True`` fails instead, before anything is captured;
  ``preview=False`` never shows it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facedet.video import FALLBACK_FPS, Display, VideoError, VideoSource, gui_problem

JPEG_QUALITY = 95
WINDOW = "facedet capture (q: stop)"


@dataclass
class CaptureResult:
    files: list[Path] = field(default_factory=list)
    stopped: str = ""  # "count" (all taken), "end" (the video ended), "interrupted" (Ctrl-C), "quit" (q)
    frames_read: int = 0
    preview_note: str | None = None  # why there was no preview, when it was not shown


def _write(out: Path, bgr: np.ndarray, quality: int) -> Path:
    """``out/<uuid1>.jpg``, written whole or not at all."""
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoError(f"cannot encode a frame of shape {bgr.shape} as JPEG")
    path = out / f"{uuid.uuid1()}.jpg"
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(buf.tobytes())
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return path


def _overlay(bgr: np.ndarray, text: str) -> np.ndarray:
    picture = bgr.copy()
    scale = max(0.5, min(picture.shape[:2]) / 480)
    cv2.putText(picture, text, (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(picture, text, (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 255), 2, cv2.LINE_AA)
    return picture


def capture(
    source: str | int | Path = 0,
    out: Path = Path("data/images"),
    count: int = 30,
    interval: float = 0.5,
    countdown: float = 3.0,
    preview: bool | None = None,
    quality: int = JPEG_QUALITY,
    on_saved: Callable[[Path, int], None] | None = None,
    say: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> CaptureResult:
    """Take ``count`` pictures ``interval`` seconds apart from ``source`` into ``out`` (see the module
    doc). ``on_saved(path, n)`` is called after each picture; ``say`` gets the messages for the user."""
    if count < 1:
        raise ValueError(f"count = {count}: expected at least 1")
    if interval < 0 or countdown < 0:
        raise ValueError(f"interval = {interval}, countdown = {countdown}: expected numbers >= 0")
    result = CaptureResult()
    if preview is not False:
        problem = gui_problem()
        if problem and preview:
            raise VideoError(f"--preview needs a window: {problem}. Use --no-preview to capture without one.")
        if problem:
            result.preview_note = f"no preview: {problem}"
            say(f"{result.preview_note}; capturing without it (Ctrl-C stops, keeping what was taken)")
        preview = not problem
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with VideoSource(source) as video:
        fps = video.fps or FALLBACK_FPS
        display = Display(WINDOW) if preview else None
        try:
            frames = iter(video)
            if video.is_camera and countdown > 0:
                if _countdown(frames, display, countdown, count, say, clock):
                    result.stopped = "quit"
                    return result
            last: float | None = None
            for frame in frames:
                now = clock() if video.is_camera else result.frames_read / fps
                result.frames_read += 1
                bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                if last is None or now - last >= interval - 1e-9:
                    last = now
                    result.files.append(_write(out, bgr, quality))
                    if on_saved is not None:
                        on_saved(result.files[-1], len(result.files))
                    if len(result.files) >= count:
                        result.stopped = "count"
                        break
                if display is not None and not display.show(_overlay(bgr, f"{len(result.files)}/{count}")):
                    result.stopped = "quit"
                    break
            else:
                result.stopped = "end"
        except KeyboardInterrupt:
            result.stopped = "interrupted"
        finally:
            if display is not None:
                display.close()
    return result


def _countdown(
    frames, display: Display | None, seconds: float, count: int, say: Callable[[str], None], clock: Callable[[], float]
) -> bool:
    """Show (or print) a countdown while the camera runs; True when the user quit during it."""
    end = clock() + seconds
    announced = None
    for frame in frames:
        left = end - clock()
        if left <= 0:
            return False
        tick = int(np.ceil(left))
        if tick != announced:
            announced = tick
            say(f"starting in {tick}...")
        if display is not None:
            picture = _overlay(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), f"starting in {tick} (0/{count})")
            if not display.show(picture):
                return True
    return False


def next_steps(out: Path) -> str:
    """What to do with the pictures: (pre)label them, then record the data and run the pipeline."""
    out = Path(out)
    parts = out.parts
    k = max((i for i, part in enumerate(parts) if part.lower() == "images"), default=None)
    label = f"labelme {out.as_posix()} --nodata"
    if k is not None:  # the images/ + labels/ layout
        label = f"labelme {out.as_posix()} --output {Path(*parts[:k], 'labels', *parts[k + 1 :]).as_posix()} --nodata"
    record = "dvc add data && dvc repro"
    if not out.is_absolute() and len(parts) > 1:
        record = f"dvc add {parts[0]} && dvc repro"
    elif out.is_absolute():
        record = f"{record}   # once the pictures and labels are under data/"
    return "\n".join(
        [
            "next:",
            f"  facedet prelabel {out.as_posix()} --peer haar   # optional: proposed boxes, to correct in labelme",
            f"  {label}   # one 'face' rectangle per face",
            f"  {record}",
        ]
    )
