"""Faces in videos and from cameras: frames in, steadier boxes, annotated frames out.

- [`BoxSmoother`][]: follows faces from frame to frame (greedy IoU matching) and smooths their
  boxes (exponential moving average), so boxes do not jitter.
- [`iter_frames`][] / [`VideoSource`][]: RGB frames of a video file or a camera.
- [`frame_indices`][] / [`FrameSampler`][]: which frames of a video to take, and taking them
  (the collect stage's video sources and the corpus share them).
- [`annotate`][], [`Display`][], `open_writer`: what ``facedet detect`` shows and writes.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facedet.boxes import box_iou
from facedet.coco import Detection
from facedet.landmarks import draw_landmarks
from facedet.problems import DataError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
VIDEO_FOURCC = "mp4v"  # writes .mp4 with the pip OpenCV builds (no H.264 encoder there)
FALLBACK_FPS = 25.0


class VideoError(DataError):
    """A video or camera cannot be read or written, or a window cannot be shown; the message says why."""


# --- tracking and smoothing --------------------------------------------------------------------------


@dataclass
class Track:
    """One face followed over frames: its smoothed box, last score and consecutive missed frames."""

    id: int
    box: np.ndarray
    score: float
    missed: int = 0
    hits: int = 1
    landmarks: np.ndarray | None = None  # [5, 2], smoothed as the box


class BoxSmoother:
    """Steadier boxes over a frame sequence.

    Each `update` matches the frame's detections to the tracks greedily by IoU (best pair
    first, IoU >= ``iou_threshold``). A matched track's box becomes
    ``alpha * new + (1 - alpha) * previous`` (alpha 1: no smoothing) and is returned in the
    detection's place, with the detection's score (its landmarks, when it has them, are smoothed the
    same way); an unmatched detection starts a new track and
    is returned unchanged. A track not matched for more than ``max_missed`` consecutive frames is
    dropped (so a face lost for a frame or two keeps its smoothing).
    """

    def __init__(self, alpha: float = 0.5, iou_threshold: float = 0.3, max_missed: int = 3) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha = {alpha}: expected 0 < alpha <= 1")
        self.alpha, self.iou_threshold, self.max_missed = alpha, iou_threshold, max_missed
        self.tracks: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        self.tracks, self._next_id = [], 0

    def update(self, detections: list[Detection]) -> list[Detection]:
        boxes = np.array([d.box for d in detections], np.float64).reshape(-1, 4)
        previous = list(self.tracks)
        matched: dict[int, Track] = {}  # detection index -> track
        if previous and len(detections):
            iou = box_iou(boxes, np.stack([t.box for t in previous]))
            used: set[int] = set()
            for flat in np.argsort(-iou, axis=None, kind="stable"):
                det, trk = (int(i) for i in np.unravel_index(flat, iou.shape))
                if iou[det, trk] < self.iou_threshold:
                    break
                if det not in matched and trk not in used:
                    matched[det] = previous[trk]
                    used.add(trk)
        out: list[Detection] = []
        for index, detection in enumerate(detections):
            track = matched.get(index)
            if track is None:  # a new face: passes through unchanged
                points = None if detection.landmarks is None else np.array(detection.landmarks, np.float64)
                self.tracks.append(Track(self._next_id, boxes[index].copy(), float(detection.score), landmarks=points))
                self._next_id += 1
                out.append(detection)
                continue
            track.box = self.alpha * boxes[index] + (1 - self.alpha) * track.box
            track.score, track.missed, track.hits = float(detection.score), 0, track.hits + 1
            points = None
            if detection.landmarks is not None:
                new = np.array(detection.landmarks, np.float64)
                track.landmarks = (
                    new if track.landmarks is None else self.alpha * new + (1 - self.alpha) * track.landmarks
                )
                points = tuple(map(tuple, track.landmarks.round(2).tolist()))
            out.append(Detection(tuple(float(v) for v in track.box.round(2)), detection.score, points))
        seen = {id(t) for t in matched.values()}
        for track in previous:
            if id(track) not in seen:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out


# --- frames in --------------------------------------------------------------------------------------


def camera_index(source: object) -> int | None:
    """The camera index meant by ``source`` (an int or a digit string), else None."""
    if isinstance(source, int) and not isinstance(source, bool):
        return source
    if isinstance(source, str) and source.isdigit() and not Path(source).exists():
        return int(source)
    return None


class VideoSource:
    """A video file or a camera, opened; iterate for RGB frames (HxWx3 uint8); close() or ``with``."""

    def __init__(self, source: str | int | Path) -> None:
        self.index = camera_index(source)
        if self.index is not None:
            self.name = f"camera{self.index}"
            self.capture = cv2.VideoCapture(self.index)
            if not self.capture.isOpened():
                raise VideoError(f"camera {self.index} cannot be opened (none here, or in use?)")
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such video file")
            self.name = path.name
            self.capture = cv2.VideoCapture(str(path))
            if not self.capture.isOpened():
                raise VideoError(f"{path}: cannot be read as a video")

    @property
    def is_camera(self) -> bool:
        return self.index is not None

    @property
    def fps(self) -> float:
        """Frames per second the source claims (0 when unknown, as cameras often say)."""
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        return float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 0.0

    @property
    def frame_count(self) -> int | None:
        """Frames in the file as its header says (an estimate for some formats); None for cameras."""
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return None if self.is_camera or count <= 0 else count

    def __iter__(self) -> Iterator[np.ndarray]:
        while self.capture.isOpened():
            ok, frame = self.capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self.capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_frames(source: str | int | Path) -> Iterator[np.ndarray]:
    """RGB frames of a video file or camera (index as int or digit string); released when the
    iteration ends, breaks or fails."""
    with VideoSource(source) as video:
        yield from video


def frame_indices(
    total: int, every: int | None = None, frames: int | None = None, max_frames: int | None = None
) -> list[int]:
    """Frame numbers to take from a video of ``total`` frames, ascending: every k-th from 0 (``every``,
    widened so that at most ``max_frames`` are taken when that is given), or ``frames`` evenly spaced
    from first to last (rounded half up; all frames when N >= total)."""
    if (every is None) == (frames is None):
        raise ValueError("frame_indices: give either every or frames")
    if any(v is not None and v < 1 for v in (every, frames, max_frames)):
        raise ValueError("every, frames and max_frames must be at least 1")
    if total <= 0:
        return []
    if every is not None:
        step = every if max_frames is None else max(every, math.ceil(total / max_frames))
        return list(range(0, total, step))
    if frames >= total:
        return list(range(total))
    if frames == 1:
        return [0]
    return [(2 * i * (total - 1) + frames - 1) // (2 * (frames - 1)) for i in range(frames)]


def count_frames(path: Path) -> int:
    """The number of frames OpenCV decodes (a container's header is not always right)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: cannot be read as a video")
    n = 0
    while capture.grab():
        n += 1
    capture.release()
    return n


class FrameSampler:
    """The wanted frames of an opened video, decoded in order: iterate for (index, RGB frame, or None
    when that frame cannot be decoded). ``wanted``: ascending frame numbers (may be endless, e.g.
    ``itertools.count(0, k)``). After the iteration, ``frames_read`` is how many frames the video
    gave and ``ended_before`` the first wanted frame it ended before (None: all were reached)."""

    def __init__(self, capture: cv2.VideoCapture, wanted: Iterable[int]) -> None:
        self.capture, self.wanted = capture, iter(wanted)
        self.frames_read = 0
        self.ended_before: int | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        target = next(self.wanted, None)
        while target is not None and self.capture.grab():
            if self.frames_read == target:
                ok, bgr = self.capture.retrieve()
                yield target, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok and bgr is not None else None
                target = next(self.wanted, None)
            self.frames_read += 1
        self.ended_before = target


# --- frames out -------------------------------------------------------------------------------------


def annotate(rgb: np.ndarray, faces: list[Detection], fps: float | None = None) -> np.ndarray:
    """A BGR copy of the picture with boxes, scores, landmarks ([`facedet.landmarks`][]) and (when
    given) frames per second drawn."""
    picture = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = max(0.4, min(picture.shape[:2]) / 600)
    thickness = max(1, round(2 * scale))
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(picture, (x1, y1), (x2, y2), (0, 220, 0), thickness)
        if face.landmarks is not None:
            draw_landmarks(picture, face.landmarks, radius=max(2, thickness + 1), bgr=True)
        label = f"{face.score:.2f}"
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, thickness)
        top = max(0, y1 - h - base - 2)
        cv2.rectangle(picture, (x1, top), (x1 + w + 4, top + h + base + 2), (0, 220, 0), -1)
        cv2.putText(
            picture,
            label,
            (x1 + 2, top + h + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * scale,
            (0, 0, 0),
            thickness,
            cv2.LINE_AA,
        )
    if fps is not None:
        cv2.putText(
            picture,
            f"{fps:.1f} FPS",
            (8, int(24 * scale) + 4),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.7 * scale,
            (0, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
    return picture


def gui_problem() -> str | None:
    """Why OpenCV cannot open a window here, or None when it can."""
    gui = next(
        (
            line.split(":", 1)[1].strip()
            for line in cv2.getBuildInformation().splitlines()
            if line.strip().startswith("GUI:")
        ),
        "",
    )
    if gui.upper() == "NONE":
        return (
            "this OpenCV build has no GUI support (opencv-python-headless); install opencv-python "
            "instead to show a window"
        )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set)"
    try:
        cv2.namedWindow("facedet-probe", cv2.WINDOW_AUTOSIZE)
        cv2.destroyWindow("facedet-probe")
    except cv2.error as err:
        return f"OpenCV cannot open a window ({str(err).strip().splitlines()[-1]})"
    return None


class Display:
    """A live window; `show` returns False once the user pressed q or Esc or closed it."""

    def __init__(self, title: str) -> None:
        problem = gui_problem()
        if problem:
            raise VideoError(
                f"--show needs a window: {problem}. Use --out DIR to write annotated pictures or video instead."
            )
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, bgr: np.ndarray, wait_ms: int = 1) -> bool:
        cv2.imshow(self.title, bgr)
        key = cv2.waitKey(wait_ms) & 0xFF
        try:
            closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            closed = True
        return key not in (ord("q"), 27) and not closed

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


def open_writer(path: Path, fps: float, width: int, height: int) -> cv2.VideoWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = "MJPG" if path.suffix.lower() == ".avi" else VIDEO_FOURCC
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise VideoError(f"{path}: OpenCV cannot write this video (codec {fourcc})")
    return writer
