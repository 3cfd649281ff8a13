"""Stage 1, collect: normalise the raw images into one clean collection plus a manifest.

Reads the sources listed in ``collect.sources`` (default: every image under ``paths.data``); writes
``paths.collect``/images (JPEG, RGB, EXIF orientation applied, longest side at most
``collect.max_side``), ``manifest.json`` (one entry per collected image: ``file``, ``source``,
``width``, ``height``, ``source_width``, ``source_height``, ``sha256``, ``origin``) and
``report.json`` (files set aside and why).

Sources (paths relative to the project root, or absolute):

- ``{type: folder, path, recursive: true, extensions: [...], min_size: 32, dedupe: true}``: every
  image file in the folder, judged by content (a PNG named .jpg is fine; a text file named .jpg is
  set aside). An image whose shorter side is below ``min_size`` pixels is set aside. With
  ``dedupe``, files with identical bytes (sha256) are collected once: the copy that has a LabelMe
  file beside it (or in the sibling ``labels/`` folder) is kept, else the first by path; the others
  are reported (warning) and skipped. Dedupe works across all folder sources that ask for it.
  For a folder inside ``paths.data``, ``source`` is the image's path relative to ``paths.data`` (the
  key the labels stage matches labels with) and ``file`` is the same with ``.jpg``; a folder outside
  ``paths.data`` collects into ``<folder name>/...`` and its labels are not read by the labels stage.
- ``{type: video, path, every: k}`` or ``{type: video, path, frames: N}``: a video file (or a folder:
  each video file in it) cut into frames, every k-th frame (0, k, 2k, ...) or N evenly spaced frames
  (first and last included); frame i collects into ``<video stem>/frame_<i:06d>.jpg`` (one folder per
  video, so the grouped split keeps a video's frames together) with ``source`` ``<video>#<i>``.
  Video frames have no labels: the labels stage only takes images it found labels or negatives for
  under ``paths.data``, so frames stay out of the splits until they are labelled (extract them
  with ``facedet capture --source clip.mp4 --out data/images/clip``, then ``facedet prelabel``).

There is no ``sample`` source: the sample's LabelMe files must be under ``paths.data`` for the labels
stage to find them, so write it there with ``facedet sample data``.

Images are streamed: one is in memory at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from facedet.config import ConfigError
from facedet.images import IMAGE_EXTENSIONS, ImageError, dataset_files, file_sha256, read_rgb, write_image
from facedet.labels.labelme import has_label_file
from facedet.problems import DataError, ProblemReport
from facedet.video import VIDEO_EXTENSIONS, VideoError, VideoSource

FOLDER_DEFAULTS = {"recursive": True, "extensions": list(IMAGE_EXTENSIONS), "min_size": 32, "dedupe": True}
SOURCE_KEYS = {"folder": {"type", "path", *FOLDER_DEFAULTS}, "video": {"type", "path", "every", "frames"}}


@dataclass(frozen=True)
class FolderSource:
    key: str  # "collect.sources[0]", for messages
    written: str  # the path as configured
    path: Path
    recursive: bool
    extensions: tuple[str, ...]
    min_size: int
    dedupe: bool


@dataclass(frozen=True)
class VideoSourceSpec:
    key: str
    written: str
    path: Path
    every: int | None
    frames: int | None


def _bad(key: str, value: object, expected: str) -> ConfigError:
    return ConfigError(f"config key '{key}' = {value!r}: expected {expected}")


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def sources(cfg: DictConfig) -> list[FolderSource | VideoSourceSpec]:
    """The configured sources, checked (ConfigError naming the key); default: one folder, paths.data."""
    raw = OmegaConf.select(cfg, "collect.sources", default=None)
    if raw is None:  # a params.yaml from before sources existed
        raw = [{"type": "folder", "path": str(cfg.paths.data)}]
    else:
        raw = OmegaConf.to_container(raw, resolve=True) if OmegaConf.is_config(raw) else raw
    if not isinstance(raw, list) or not raw:
        raise _bad("collect.sources", raw, "a non-empty list of sources ({type: folder|video, path: ...})")
    out: list[FolderSource | VideoSourceSpec] = []
    for i, item in enumerate(raw):
        key = f"collect.sources[{i}]"
        if not isinstance(item, dict):
            raise _bad(key, item, "a mapping such as {type: folder, path: data}")
        kind = item.get("type")
        if kind == "sample":
            raise _bad(
                f"{key}.type",
                kind,
                "folder or video (there is no sample source: the sample's "
                "LabelMe files must be under paths.data for the labels stage, so write it there "
                "with `facedet sample data`)",
            )
        if kind not in SOURCE_KEYS:
            raise _bad(f"{key}.type", kind, "folder or video")
        unknown = sorted(set(item) - SOURCE_KEYS[kind])
        if unknown:
            raise _bad(
                f"{key}.{unknown[0]}",
                item[unknown[0]],
                f"no such key for a {kind} source (keys: {', '.join(sorted(SOURCE_KEYS[kind]))})",
            )
        written = item.get("path")
        if not isinstance(written, str) or not written:
            raise _bad(f"{key}.path", written, "a folder or file path (relative to the project root, or absolute)")
        if kind == "folder":
            s = {**FOLDER_DEFAULTS, **item}
            if not isinstance(s["recursive"], bool):
                raise _bad(f"{key}.recursive", s["recursive"], "true or false")
            if not isinstance(s["dedupe"], bool):
                raise _bad(f"{key}.dedupe", s["dedupe"], "true or false")
            if not (isinstance(s["min_size"], int) and not isinstance(s["min_size"], bool) and s["min_size"] >= 1):
                raise _bad(f"{key}.min_size", s["min_size"], "a positive integer (pixels)")
            exts = s["extensions"]
            if not (isinstance(exts, list) and exts and all(isinstance(e, str) and e.strip(".") for e in exts)):
                raise _bad(f"{key}.extensions", exts, "a non-empty list of file extensions such as [.jpg, .png]")
            exts = tuple(sorted({"." + e.lower().lstrip(".") for e in exts}))
            out.append(FolderSource(key, written, Path(written), s["recursive"], exts, s["min_size"], s["dedupe"]))
        else:
            every, frames = item.get("every"), item.get("frames")
            if (every is None) == (frames is None):
                raise _bad(
                    key,
                    item,
                    "a video source with either every: k (every k-th frame) or frames: N (N evenly spaced frames)",
                )
            if every is not None and not _positive(every):
                raise _bad(f"{key}.every", every, "a positive integer")
            if frames is not None and not _positive(frames):
                raise _bad(f"{key}.frames", frames, "a positive integer")
            out.append(VideoSourceSpec(key, written, Path(written), every, frames))
    return out


# --- names -----------------------------------------------------------------------------------------


def _inside(path: Path, root: Path) -> str | None:
    """path relative to root (POSIX, lexical: links are not resolved) when inside it, else None."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if rel == ".":
        return ""
    return None if rel == ".." or rel.startswith("../") or os.path.isabs(rel) else Path(rel).as_posix()


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


class _Names:
    """``source`` (the key the labels stage matches) and ``file`` (in the collection) of a folder image."""

    def __init__(self, folder: FolderSource, data: Path):
        self.in_data = _inside(folder.path, data)
        self.prefix = self.in_data if self.in_data is not None else folder.written.rstrip("/")
        self.collected = self.in_data if self.in_data is not None else Path(os.path.abspath(folder.path)).name

    def __call__(self, rel: str) -> tuple[str, str]:
        return _join(self.prefix, rel), Path(_join(self.collected, rel)).with_suffix(".jpg").as_posix()


def list_folder(folder: FolderSource) -> tuple[list[Path], list[Path]]:
    """(files, refused links) of the folder with one of its extensions (case-insensitive), sorted,
    by the rules of :func:`facedet.images.dataset_files` (the labels importers' too)."""
    return dataset_files(folder.path, folder.extensions, folder.recursive)


def frame_indices(total: int, every: int | None = None, frames: int | None = None) -> list[int]:
    """Frame numbers to take from a video of ``total`` frames: every k-th from 0, or N evenly spaced
    from first to last (rounded half up); all frames when N >= total."""
    if total <= 0:
        return []
    if every is not None:
        return list(range(0, total, every))
    if frames >= total:
        return list(range(total))
    if frames == 1:
        return [0]
    return [(2 * i * (total - 1) + frames - 1) // (2 * (frames - 1)) for i in range(frames)]


# --- the stage -------------------------------------------------------------------------------------


class _Collection:
    """The output folder, manifest and report of one run; writes one image at a time."""

    def __init__(self, cfg: DictConfig, out: Path, report: ProblemReport):
        self.out, self.report = out, report
        self.max_side, self.jpeg_quality = int(cfg.collect.max_side), int(cfg.collect.jpeg_quality)
        self.folders: set[Path] = set()  # output folders made so far
        self.manifest: list[dict] = []
        self.written: dict[str, str] = {}  # collected file -> the source it came from

    def add(self, name: str, target: str, rgb: np.ndarray, sha256: str, origin: dict) -> bool:
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


def _progress() -> Progress:
    columns = [TextColumn("collect {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    return Progress(*columns, transient=True, console=Console(stderr=True))


def _keepers(folders: list[tuple[FolderSource, list[Path]]], bar: Progress) -> dict[Path, tuple[str, Path]]:
    """For dedupe folders: file -> (sha256, the file kept for that content)."""
    files = [p for folder, paths in folders if folder.dedupe for p in paths]
    if not files:
        return {}
    task = bar.add_task("(looking for duplicates)", total=len(files))
    by_hash: dict[str, list[Path]] = {}
    digests: dict[Path, str] = {}
    for path in files:
        try:
            digests[path] = file_sha256(path)
            by_hash.setdefault(digests[path], []).append(path)
        except OSError:
            pass  # reported when it is read
        bar.advance(task)
    bar.remove_task(task)
    kept: dict[Path, tuple[str, Path]] = {}
    for digest, paths in by_hash.items():
        keeper = paths[0]
        if len(paths) > 1:
            keeper = next((p for p in paths if has_label_file(p)), paths[0])
        for path in paths:
            kept[path] = (digest, keeper)
    return kept


def _collect_folder(
    folder: FolderSource,
    paths: list[Path],
    names: _Names,
    kept: dict,
    collection: _Collection,
    bar: Progress,
    name_of: dict[Path, str],
) -> None:
    report = collection.report
    task = bar.add_task(folder.written, total=len(paths))
    origin = {"type": "folder", "path": folder.written}
    for path in paths:
        bar.advance(task)
        name, target = names(path.relative_to(folder.path).as_posix())
        digest, keeper = kept.get(path, (None, path))
        if keeper != path:
            report.warning(
                name,
                f"skipped: duplicate of {name_of.get(keeper, keeper)} (identical content, sha256 {digest[:12]}...)",
            )
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


def _videos_of(spec: VideoSourceSpec) -> list[Path]:
    if spec.path.is_dir():
        return dataset_files(spec.path, VIDEO_EXTENSIONS)[0]
    return [spec.path]


def _collect_video(
    spec: VideoSourceSpec, path: Path, data: Path, collection: _Collection, bar: Progress, stems: dict[str, str]
) -> None:

    report = collection.report
    in_data = _inside(path, data)
    shown = (
        in_data
        if in_data is not None
        else (
            path.as_posix()
            if spec.path.is_file()
            else _join(spec.written.rstrip("/"), path.relative_to(spec.path).as_posix())
        )
    )
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
        capture = video.capture
        total = video.frame_count
        if spec.frames is not None and total is None:  # no count in the header: count the frames
            total = 0
            while capture.grab():
                total += 1
            capture.release()
            capture = video.capture = cv2.VideoCapture(str(path))
        if spec.frames is not None:  # N evenly spaced frames: by the frame count
            wanted: list[int] | None = frame_indices(total, frames=spec.frames)
            targets = iter(wanted)
            next_wanted = next(targets, None)
            expected = len(wanted)
        else:  # every k-th frame: read to the end, whatever the header says
            wanted, targets, next_wanted = None, None, 0
            expected = -(-total // spec.every) if total else None
        task = bar.add_task(f"{shown} (frames)", total=expected)
        origin_base = {"type": "video", "path": shown}
        index, got = 0, 0
        while next_wanted is not None:
            if not capture.grab():
                break
            if index == next_wanted:
                name = f"{shown}#{index}"
                ok, bgr = capture.retrieve()
                if ok and bgr is not None:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    collection.add(
                        name,
                        f"{path.stem}/frame_{index:06d}.jpg",
                        rgb,
                        hashlib.sha256(np.ascontiguousarray(rgb).data).hexdigest(),
                        {**origin_base, "frame": index},
                    )
                    got += 1
                else:
                    report.error(name, "frame set aside: cannot be decoded")
                bar.advance(task)
                next_wanted = next(targets, None) if targets is not None else next_wanted + spec.every
            index += 1
        bar.remove_task(task)
    if wanted is not None and next_wanted is not None and index > 0:
        report.warning(
            shown,
            f"the video ended after {index} frames though its header says {total}: "
            f"{got} of {len(wanted)} wanted frames collected",
        )
    if index == 0:
        report.error(shown, "set aside: no frame could be read")


def run(cfg: DictConfig) -> None:
    data, out = Path(cfg.paths.data), Path(cfg.paths.collect)
    specs = sources(cfg)
    for spec in specs:
        if not spec.path.exists():
            what = "folder of images" if isinstance(spec, FolderSource) else "video file or folder of videos"
            hint = " (paths.data)" if _inside(spec.path, data) == "" else ""
            raise FileNotFoundError(f"{spec.key}.path: {spec.path}{hint} is not a {what}")
        if isinstance(spec, FolderSource) and not spec.path.is_dir():
            raise FileNotFoundError(f"{spec.key}.path: {spec.path} is not a folder of images")
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    report = ProblemReport("collect")
    collection = _Collection(cfg, out, report)
    folders = []
    for spec in specs:
        if isinstance(spec, FolderSource):
            paths, refused = list_folder(spec)
            folders.append((spec, paths))
            for link in refused:
                report.error(
                    _Names(spec, data)(link.relative_to(spec.path).as_posix())[0],
                    "set aside: a link that leads outside the folder (not read)",
                )
    name_of = {
        path: _Names(spec, data)(path.relative_to(spec.path).as_posix())[0] for spec, paths in folders for path in paths
    }
    stems: dict[str, str] = {}
    with _progress() as bar:
        kept = _keepers(folders, bar)
        listed = dict((id(spec), paths) for spec, paths in folders)
        for spec in specs:
            if isinstance(spec, FolderSource):
                _collect_folder(spec, listed[id(spec)], _Names(spec, data), kept, collection, bar, name_of)
            else:
                for video in _videos_of(spec):
                    _collect_video(spec, video, data, collection, bar, stems)
    report.raise_if_strict(cfg.strict)
    if not collection.manifest:
        where = ", ".join(spec.written for spec in specs)
        raise DataError(f"collect.sources: no usable image in {where}")
    (out / "manifest.json").write_text(json.dumps(collection.manifest, indent=1) + "\n")
    by_type: dict[str, int] = {}
    for entry in collection.manifest:
        by_type[entry["origin"]["type"]] = by_type.get(entry["origin"]["type"], 0) + 1
    report.write(
        out / "report.json",
        images=len(collection.manifest),
        **{f"{kind}_images": n for kind, n in sorted(by_type.items())},
    )
