"""``facedet detect``: images, folders, globs, videos and cameras to JSON, CSV, annotated pictures /
video and a live window, with a [`FaceDetector`][facedet.inference.detector.FaceDetector]."""

from __future__ import annotations

import csv
import fnmatch
import glob
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from facedet.coco import Detection
from facedet.images import IMAGE_EXTENSIONS, ImageError, dataset_files, read_picture, write_image
from facedet.inference.detector import FaceDetector
from facedet.progress import Every, line, track
from facedet.video import (
    FALLBACK_FPS,
    VIDEO_EXTENSIONS,
    BoxSmoother,
    Display,
    VideoError,
    VideoSource,
    annotate,
    open_writer,
)

log = logging.getLogger(__name__)


# --- sources and results ---------------------------------------------------------------------------


@dataclass
class Source:
    """What ``facedet detect`` reads: ``kind`` is image, folder, glob, video or camera."""

    kind: str
    spec: str
    files: list[Path] = field(default_factory=list)
    root: Path | None = None  # names of folder / glob files are relative to it
    refused: list[Path] = field(default_factory=list)  # links that lead out of the folder: never opened

    def name(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if self.root is not None else path.name


def resolve_source(spec: str | Path) -> Source:
    text = str(spec)
    path = Path(text)
    if text.isdigit() and not path.exists():
        return Source("camera", text)
    if path.is_dir():
        files, refused = dataset_files(path, IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"{path}: no image found")
        return Source("folder", text, files, path, refused)
    if path.is_file():
        return Source("video" if path.suffix.lower() in VIDEO_EXTENSIONS else "image", text, [path])
    if glob.has_magic(text):
        parts = Path(text).parts
        static = next(i for i, part in enumerate(parts) if glob.has_magic(part))
        root = Path(*parts[:static]) if static else Path(".")
        files = glob_files(root, parts[static:])
        if not files:
            raise FileNotFoundError(f"{text}: no file matches")
        videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
        if videos:
            raise FileNotFoundError(f"{text}: matches videos ({videos[0]}, ...); give videos one at a time")
        return Source("glob", text, files, root)
    raise FileNotFoundError(f"{text}: no such file, folder, glob match or camera index")


def glob_files(root: Path, pattern: tuple[str, ...]) -> list[Path]:
    """Files under root whose path relative to it matches the pattern parts (``**``: any number of
    folders), sorted. Links to folders are not walked, so link loops end; hidden names match only
    a pattern part that starts with a dot, as in `glob`."""

    def matches(names: tuple[str, ...], parts: tuple[str, ...]) -> bool:
        if not parts:
            return not names
        if parts[0] == "**":
            return matches(names, parts[1:]) or (
                bool(names) and not names[0].startswith(".") and matches(names[1:], parts)
            )
        return (
            bool(names)
            and (not names[0].startswith(".") or parts[0].startswith("."))
            and fnmatch.fnmatchcase(names[0], parts[0])
            and matches(names[1:], parts[1:])
        )

    found = []
    for folder, subfolders, names in os.walk(root):  # followlinks=False
        subfolders.sort()
        rel = Path(folder).relative_to(root).parts
        found += [Path(folder, name) for name in names if matches((*rel, name), pattern)]
    return sorted(p for p in found if p.is_file())


class Results:
    """The detections of one run, in the stable JSON contract and as CSV rows."""

    # landmarks: five "x y" pairs (facedet.coco.KEYPOINT_NAMES order) joined by ";", empty for a model without.
    CSV_HEADER = ("file", "frame", "x1", "y1", "x2", "y2", "score", "landmarks")

    def __init__(self) -> None:
        self.data: dict = {"images": [], "errors": []}
        self.rows: list[tuple] = []

    def add(self, file: str, width: int, height: int, faces: list[Detection], frame: int | None = None) -> None:
        """One picture (or a video frame: ``file`` is the video's name, the entry ``"<file>#<frame>"``)."""
        self.data["images"].append(
            {
                "file": file if frame is None else f"{file}#{frame}",
                "width": int(width),
                "height": int(height),
                "faces": [
                    {"box": [round(float(v), 2) for v in f.box], "score": round(float(f.score), 4)}
                    | ({"landmarks": _points(f.landmarks)} if f.landmarks is not None else {})
                    for f in faces
                ],
            }
        )
        self.rows += [
            (
                file,
                "" if frame is None else frame,
                *(round(float(v), 2) for v in f.box),
                round(float(f.score), 4),
                ";".join(f"{x:g} {y:g}" for x, y in _points(f.landmarks)) if f.landmarks is not None else "",
            )
            for f in faces
        ]

    def error(self, file: str, problem: str) -> None:
        self.data["errors"].append({"file": file, "problem": problem})

    @property
    def faces(self) -> int:
        return sum(len(image["faces"]) for image in self.data["images"])

    def write_json(self, path: Path) -> None:
        """To ``path``, or to stdout when it is ``-``."""
        text = json.dumps(self.data, indent=1) + "\n"
        if str(path) == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        with _replacing(path) as target:
            target.write_text(text)

    def table(self) -> str:
        """The boxes as aligned text, one face per row (file, face, x1 y1 x2 y2 in pixels, score);
        a picture without a face is one row that says so."""
        rows = [("file", "face", "x1", "y1", "x2", "y2", "score")]
        for image in self.data["images"]:
            if not image["faces"]:
                rows.append((image["file"], "-", "", "", "", "", "no face"))
            for k, face in enumerate(image["faces"], 1):
                rows.append((image["file"], str(k), *(f"{v:.1f}" for v in face["box"]), f"{face['score']:.3f}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))
            ).rstrip()
            for row in rows
        )

    def write_csv(self, path: Path) -> None:
        """UTF-8; a file name that is not UTF-8 keeps its own bytes (surrogateescape, as os.fsencode)."""
        with (
            _replacing(path) as target,
            open(target, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle,
        ):
            writer = csv.writer(handle)
            writer.writerow(self.CSV_HEADER)
            writer.writerows(self.rows)


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A file to write that replaces ``path`` once complete: a full disk or a kill midway leaves the
    previous file whole. (A device such as /dev/stdout is written directly.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path if path.exists() and not path.is_file() else path.with_name(f".{path.name}.partial")
    try:
        yield partial
        if partial != path:
            os.replace(partial, path)
    except OSError as err:
        err.filename = err.filename or os.fsdecode(path)  # a failed write names no file: this one
        raise
    finally:
        if partial != path:
            partial.unlink(missing_ok=True)


def _points(landmarks) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in landmarks]


def _detect_images(
    detector: FaceDetector, source: Source, results: Results, out_dir: Path | None, display: object | None
) -> None:
    for link in source.refused:
        results.error(source.name(link), "a link that leads outside the folder (not read)")
    files = source.files
    for path in track(files, "detect") if len(files) >= 10 else files:
        name = source.name(path)
        try:
            picture = read_picture(path)
        except ImageError as err:
            results.error(name, err.problem)
            continue
        image = picture.rgb
        faces = detector(image)
        factor = picture.width / image.shape[1]  # > 1: a big JPEG decoded at a reduced scale
        results.add(
            name,
            picture.width,
            picture.height,
            [
                Detection(
                    tuple(round(v * factor, 2) for v in f.box),
                    f.score,
                    None if f.landmarks is None else tuple((x * factor, y * factor) for x, y in f.landmarks),
                )
                for f in faces
            ],
        )
        if out_dir is not None or display is not None:
            shown = annotate(image, faces)
            if out_dir is not None:
                target = out_dir / name
                if target.suffix.lower() not in IMAGE_EXTENSIONS:
                    target = target.with_suffix(".png")
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_image(target, shown, bgr=True)
                except (OSError, ValueError) as err:
                    results.error(name, f"cannot write {os.fsdecode(target)} ({getattr(err, 'strerror', None) or err})")
            if display is not None and not display.show(shown, wait_ms=0):  # type: ignore[attr-defined]
                break


def run_detect(
    spec: str | Path,
    detector: FaceDetector,
    json_out: Path | None = None,
    csv_out: Path | None = None,
    out: Path | None = None,
    smooth: bool = True,
    show: bool = False,
    max_frames: int | None = None,
) -> Results:
    """Detect faces in an image, a folder, a glob, a video file or a camera; write what is asked.

    Video and camera frames are smoothed over time ([`facedet.video.BoxSmoother`][]) unless
    ``smooth`` is false. Ctrl-C (or q in the window) stops early, keeping what was done so far.
    """
    source = resolve_source(spec)
    display = Display(f"facedet: {source.spec}") if show else None  # fails early without a GUI
    results = Results()
    results.data["model"] = detector.model_info  # which model, run and threshold made these boxes
    try:
        with _signals_interrupt():
            if source.kind in ("video", "camera"):
                # Frames are scanned once, at the scan size: the frame rate comes first.
                once = detector.with_max_size(None)
                detect_video(once, source.spec, results, out=out, smooth=smooth, display=display, max_frames=max_frames)
            else:
                _detect_images(detector, source, results, out, display)
    except KeyboardInterrupt:
        log.warning("interrupted: writing what was detected so far")
    except VideoError as err:  # the video cannot be opened: an error of the run, like an unreadable picture
        results.error(source.spec, str(err).removeprefix(f"{source.spec}: "))
    finally:
        if display is not None:
            display.close()
        if json_out is not None:
            results.write_json(json_out)
        if csv_out is not None:
            results.write_csv(csv_out)
    return results


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (``kill``, a closed terminal, a job scheduler's stop) stop the run like
    Ctrl-C: what was detected so far is written. Only in the main thread (where signals arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _video_target(out: Path, name: str) -> Path:
    """``out`` itself when it names a video file, else ``out/<name stem>.mp4``."""
    if out.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"):
        return out
    return out / f"{Path(name).stem}.mp4"


def detect_video(
    detector: FaceDetector,
    source: str | int | Path,
    results: Results,
    out: Path | None = None,
    smooth: bool = True,
    display: Display | None = None,
    max_frames: int | None = None,
    progress: bool = True,
) -> int:
    """Detect faces frame by frame; entries ``"<name>#<frame>"`` go to ``results``; an annotated video
    (boxes, scores; the live window also shows frames per second) to ``out`` when given. Returns the number of frames done. Whatever stops
    it (end, ``max_frames``, q in the window, Ctrl-C), the writer and the source are released."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    smoother = BoxSmoother() if smooth else None
    writer: cv2.VideoWriter | None = None
    done, fps = 0, None
    with VideoSource(source) as video:
        total = video.frame_count
        if max_frames is not None:
            total = min(total, max_frames) if total is not None else max_frames
        columns = [
            TextColumn("detect {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]}"),
            TimeRemainingColumn(),
        ]
        terminal, clock = sys.stderr.isatty(), Every()
        with Progress(*columns, transient=True, disable=not progress, console=Console(stderr=True)) as bar:
            task = bar.add_task(video.name, total=total, fps="")
            try:
                for frame in video:
                    if max_frames is not None and done >= max_frames:
                        break
                    started = time.perf_counter()
                    faces = detector(frame)
                    if smoother is not None:
                        faces = smoother.update(faces)
                    elapsed = max(time.perf_counter() - started, 1e-9)
                    fps = 1 / elapsed if fps is None else 0.9 * fps + 0.1 / elapsed
                    results.add(video.name, frame.shape[1], frame.shape[0], faces, frame=done)
                    done += 1
                    bar.update(task, advance=1, fps=f"{fps:.1f} FPS")
                    if progress and not terminal and clock():  # rich's bar shows nothing without a terminal
                        print(line(f"detect {video.name}", done, total, clock.elapsed, "frames"), file=sys.stderr)
                    if out is None and display is None:
                        continue
                    if out is not None:
                        picture = annotate(frame, faces)  # no FPS in the file: it is this machine's, not the video's
                        if writer is None:
                            writer = open_writer(
                                _video_target(out, video.name),
                                video.fps or FALLBACK_FPS,
                                picture.shape[1],
                                picture.shape[0],
                            )
                        writer.write(picture)
                    if display is not None and not display.show(annotate(frame, faces, fps)):
                        break
            except KeyboardInterrupt:
                log.warning("interrupted after %d frames: keeping what was written", done)
            finally:
                if writer is not None:
                    writer.release()
    return done
