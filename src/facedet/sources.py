"""Where a collection's pictures come from: the configured sources, checked; the names their pictures
get; which files are duplicates.

A source is ``{type: folder, path, recursive, extensions, min_size, dedupe}`` (every image file in a
folder) or ``{type: video, path, every: k | frames: N}`` (frames of a video file, or of each video in a
folder); see [`facedet.pipeline.collect`][] for what the collect stage makes of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from facedet.config import ConfigError
from facedet.images import IMAGE_EXTENSIONS, dataset_files, file_sha256
from facedet.label_formats.labelme_pairing import has_label_file
from facedet.video import VIDEO_EXTENSIONS

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


Source = FolderSource | VideoSourceSpec


def _bad(key: str, value: object, expected: str) -> ConfigError:
    return ConfigError(f"config key '{key}' = {value!r}: expected {expected}")


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def read_sources(raw: object, data: Path) -> list[Source]:
    """The sources of ``collect.sources`` (a list of mappings), checked (ConfigError naming the key);
    None: one folder, ``data`` (a params.yaml from before sources existed)."""
    if raw is None:
        raw = [{"type": "folder", "path": str(data)}]
    if not isinstance(raw, list) or not raw:
        raise _bad("collect.sources", raw, "a non-empty list of sources ({type: folder|video, path: ...})")
    return [_source(f"collect.sources[{i}]", item) for i, item in enumerate(raw)]


def _source(key: str, item: object) -> Source:
    if not isinstance(item, dict):
        raise _bad(key, item, "a mapping such as {type: folder, path: data}")
    kind = item.get("type")
    if kind == "sample":
        raise _bad(
            f"{key}.type",
            kind,
            "folder or video (there is no sample source: the sample's LabelMe files must be under "
            "paths.data for the labels stage, so write it there with `facedet sample data`)",
        )
    if kind not in SOURCE_KEYS:
        raise _bad(f"{key}.type", kind, "folder or video")
    unknown = sorted(set(item) - SOURCE_KEYS[kind])
    if unknown:
        expected = f"no such key for a {kind} source (keys: {', '.join(sorted(SOURCE_KEYS[kind]))})"
        raise _bad(f"{key}.{unknown[0]}", item[unknown[0]], expected)
    written = item.get("path")
    if not isinstance(written, str) or not written:
        raise _bad(f"{key}.path", written, "a folder or file path (relative to the project root, or absolute)")
    return _folder(key, written, item) if kind == "folder" else _video(key, written, item)


def _folder(key: str, written: str, item: dict) -> FolderSource:
    s = {**FOLDER_DEFAULTS, **item}
    for flag in ("recursive", "dedupe"):
        if not isinstance(s[flag], bool):
            raise _bad(f"{key}.{flag}", s[flag], "true or false")
    if not _positive(s["min_size"]):
        raise _bad(f"{key}.min_size", s["min_size"], "a positive integer (pixels)")
    exts = s["extensions"]
    if not (isinstance(exts, list) and exts and all(isinstance(e, str) and e.strip(".") for e in exts)):
        raise _bad(f"{key}.extensions", exts, "a non-empty list of file extensions such as [.jpg, .png]")
    exts = tuple(sorted({"." + e.lower().lstrip(".") for e in exts}))
    return FolderSource(key, written, Path(written), s["recursive"], exts, s["min_size"], s["dedupe"])


def _video(key: str, written: str, item: dict) -> VideoSourceSpec:
    every, frames = item.get("every"), item.get("frames")
    if (every is None) == (frames is None):
        expected = "a video source with either every: k (every k-th frame) or frames: N (N evenly spaced frames)"
        raise _bad(key, item, expected)
    if every is not None and not _positive(every):
        raise _bad(f"{key}.every", every, "a positive integer")
    if frames is not None and not _positive(frames):
        raise _bad(f"{key}.frames", frames, "a positive integer")
    return VideoSourceSpec(key, written, Path(written), every, frames)


def check_exist(sources: list[Source], data: Path) -> None:
    """FileNotFoundError naming the key of the first source whose path is not there (or not a folder)."""
    for spec in sources:
        if not spec.path.exists():
            what = "folder of images" if isinstance(spec, FolderSource) else "video file or folder of videos"
            hint = " (paths.data)" if inside(spec.path, data) == "" else ""
            raise FileNotFoundError(f"{spec.key}.path: {spec.path}{hint} is not a {what}")
        if isinstance(spec, FolderSource) and not spec.path.is_dir():
            raise FileNotFoundError(f"{spec.key}.path: {spec.path} is not a folder of images")


# --- names -----------------------------------------------------------------------------------------


def inside(path: Path, root: Path) -> str | None:
    """path relative to root (POSIX, lexical: links are not resolved) when inside it, else None."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if rel == ".":
        return ""
    return None if rel == ".." or rel.startswith("../") or os.path.isabs(rel) else Path(rel).as_posix()


def join(*parts: str) -> str:
    """The non-empty parts joined with '/'."""
    return "/".join(p for p in parts if p)


class FolderNames:
    """``source`` (the key the labels stage matches labels with) and ``file`` (in the collection) of a
    folder's image: inside ``data``, its path relative to ``data`` (and the same with ``.jpg``); outside,
    under the folder's path as written (and collected into ``<folder name>/``)."""

    def __init__(self, folder: FolderSource, data: Path):
        self.folder = folder
        in_data = inside(folder.path, data)
        self.prefix = in_data if in_data is not None else folder.written.rstrip("/")
        self.collected = in_data if in_data is not None else Path(os.path.abspath(folder.path)).name

    def __call__(self, path: Path) -> tuple[str, str]:
        rel = path.relative_to(self.folder.path).as_posix()
        return join(self.prefix, rel), Path(join(self.collected, rel)).with_suffix(".jpg").as_posix()


def video_name(spec: VideoSourceSpec, path: Path, data: Path) -> str:
    """How a video of a source is named in messages and ``source`` keys."""
    in_data = inside(path, data)
    if in_data is not None:
        return in_data
    if spec.path.is_file():
        return path.as_posix()
    return join(spec.written.rstrip("/"), path.relative_to(spec.path).as_posix())


def list_folder(folder: FolderSource) -> tuple[list[Path], list[Path]]:
    """(files, refused links) of the folder with one of its extensions (case-insensitive), sorted,
    by the rules of [`facedet.images.dataset_files`][] (the labels importers' too)."""
    return dataset_files(folder.path, folder.extensions, folder.recursive)


def list_videos(spec: VideoSourceSpec) -> list[Path]:
    """The video file, or the video files in the folder."""
    return dataset_files(spec.path, VIDEO_EXTENSIONS)[0] if spec.path.is_dir() else [spec.path]


# --- duplicates ------------------------------------------------------------------------------------


def duplicates(files: list[Path], on_each=None) -> dict[Path, tuple[str, Path]]:
    """file -> (its sha256, the file kept for that content): of files with identical bytes, the one
    with a LabelMe file beside it (or in the sibling ``labels/``), else the first. A file that cannot
    be read is left out (reported when it is read). ``on_each()`` is called after each file."""
    by_hash: dict[str, list[Path]] = {}
    for path in files:
        try:
            by_hash.setdefault(file_sha256(path), []).append(path)
        except OSError:
            pass
        if on_each:
            on_each()
    kept: dict[Path, tuple[str, Path]] = {}
    for digest, paths in by_hash.items():
        keeper = next((p for p in paths if has_label_file(p)), paths[0]) if len(paths) > 1 else paths[0]
        kept.update({path: (digest, keeper) for path in paths})
    return kept
