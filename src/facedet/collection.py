"""A collection being written: pictures of folder and video sources, normalised into one folder of
JPEGs with a manifest entry each, one picture in memory at a time; problems go to a report."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import cv2
import numpy as np
from rich.progress import Progress

from facedet.images import ImageError, file_sha256, read_rgb, write_image
from facedet.problems import ProblemReport
from facedet.sources import FolderNames, FolderSource, VideoSourceSpec, video_name
from facedet.video import FrameSampler, VideoError, VideoSource, count_frames, frame_indices


class Collection:
    """The output folder (``images/``), manifest and report of one run; writes one picture at a time,
    its longest side at most ``max_side``."""

    def __init__(self, out: Path, max_side: int, jpeg_quality: int, report: ProblemReport):
        self.out, self.max_side, self.jpeg_quality, self.report = out, max_side, jpeg_quality, report
        self.folders: set[Path] = set()  # output folders made so far
        self.manifest: list[dict] = []
        self.written: dict[str, str] = {}  # collected file -> the source it came from

    def add(self, name: str, target: str, rgb: np.ndarray, sha256: str, origin: dict) -> bool:
        """Write ``rgb`` as ``images/<target>`` with its manifest entry; False (reported) when another
        source already collected into that file."""
        if target in self.written:
            self.report.error(name, f"set aside: collects to the same file ({target}) as {self.written[target]}")
            return False
        self.written[target] = name
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            rgb = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        path = self.out / "images" / target
        if path.parent not in self.folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.folders.add(path.parent)
        write_image(path, rgb, self.jpeg_quality)
        self.manifest.append(
            {
                "file": target,
                "source": name,
                "width": rgb.shape[1],
                "height": rgb.shape[0],
                "source_width": width,
                "source_height": height,
                "sha256": sha256,
                "origin": origin,
            }
        )
        return True

    def counts(self) -> dict[str, int]:
        """Collected pictures per origin type (``folder_images``, ``video_images``)."""
        by_type: dict[str, int] = {}
        for entry in self.manifest:
            by_type[entry["origin"]["type"]] = by_type.get(entry["origin"]["type"], 0) + 1
        return {f"{kind}_images": n for kind, n in sorted(by_type.items())}


def collect_folder(
    folder: FolderSource,
    paths: list[Path],
    names: FolderNames,
    kept: dict[Path, tuple[str, Path]],
    name_of: dict[Path, str],
    collection: Collection,
    bar: Progress,
) -> None:
    """The folder's images (``paths``); a duplicate whose ``kept`` copy is another file (named as
    ``name_of`` says) is skipped."""
    report = collection.report
    task = bar.add_task(folder.written, total=len(paths))
    origin = {"type": "folder", "path": folder.written}
    for path in paths:
        bar.advance(task)
        name, target = names(path)
        digest, keeper = kept.get(path, (None, path))
        if keeper != path:
            kept_name = name_of.get(keeper, keeper)
            report.warning(name, f"skipped: duplicate of {kept_name} (identical content, sha256 {digest[:12]}...)")
            continue
        try:
            rgb = read_rgb(path, max_side=collection.max_side)
        except ImageError as err:
            report.error(name, f"set aside: {err.problem}")
            continue
        height, width = rgb.shape[:2]
        if min(width, height) < folder.min_size:
            report.error(
                name, f"set aside: too small ({width}x{height} px; {folder.key}.min_size is {folder.min_size})"
            )
            continue
        collection.add(name, target, rgb, digest or file_sha256(path), origin)
    bar.remove_task(task)


def collect_video(
    spec: VideoSourceSpec, path: Path, data: Path, collection: Collection, bar: Progress, stems: dict[str, str]
) -> None:
    """The chosen frames of one video: frame i into ``<video stem>/frame_<i:06d>.jpg`` (``stems``: the
    video stems collected so far, two videos of one stem would collect into one folder)."""
    report, shown = collection.report, video_name(spec, path, data)
    origin = {"type": "video", "path": shown}
    if path.stem in stems:
        report.error(shown, f"set aside: its frames would collect into {path.stem}/ like those of {stems[path.stem]}")
        return
    stems[path.stem] = shown
    try:
        video = VideoSource(path)
    except (VideoError, FileNotFoundError) as err:
        report.error(shown, f"set aside: {err}")
        return
    with video:
        # N evenly spaced frames: by the frame count (counted when the header has none); every k-th
        # frame: read to the end, whatever the header says.
        total = video.frame_count
        if spec.frames is not None:
            total = total if total is not None else count_frames(path)
            wanted = frame_indices(total, frames=spec.frames)
            expected = len(wanted)
        else:
            wanted, expected = itertools.count(0, spec.every), -(-total // spec.every) if total else None
        sampler = FrameSampler(video.capture, wanted)
        task = bar.add_task(f"{shown} (frames)", total=expected)
        got = 0
        for index, rgb in sampler:
            bar.advance(task)
            name = f"{shown}#{index}"
            if rgb is None:
                report.error(name, "frame set aside: cannot be decoded")
                continue
            digest = hashlib.sha256(np.ascontiguousarray(rgb).data).hexdigest()
            collection.add(name, f"{path.stem}/frame_{index:06d}.jpg", rgb, digest, {**origin, "frame": index})
            got += 1
        bar.remove_task(task)
    if sampler.frames_read == 0:
        report.error(shown, "set aside: no frame could be read")
    elif spec.frames is not None and sampler.ended_before is not None:
        report.warning(
            shown,
            f"the video ended after {sampler.frames_read} frames though its header says {total}: "
            f"{got} of {len(wanted)} wanted frames collected",
        )
