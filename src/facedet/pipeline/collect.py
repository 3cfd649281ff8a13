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

Images are streamed: one is in memory at a time. The sources, their names and duplicates are
[`facedet.sources`][]'; writing the collection is [`facedet.collection`][].
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from facedet.collection import Collection, collect_folder, collect_video
from facedet.problems import DataError, ProblemReport
from facedet.sources import FolderNames, FolderSource, check_exist, duplicates, list_folder, list_videos, read_sources


def _progress() -> Progress:
    columns = [TextColumn("collect {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    return Progress(*columns, transient=True, console=Console(stderr=True))


def run(cfg: DictConfig) -> None:
    data, out = Path(cfg.paths.data), Path(cfg.paths.collect)
    raw = OmegaConf.select(cfg, "collect.sources", default=None)
    specs = read_sources(OmegaConf.to_container(raw, resolve=True) if OmegaConf.is_config(raw) else raw, data)
    check_exist(specs, data)
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    report = ProblemReport("collect")
    collection = Collection(out, int(cfg.collect.max_side), int(cfg.collect.jpeg_quality), report)
    listed: dict[int, list[Path]] = {}  # id(folder source) -> its files
    name_of: dict[Path, str] = {}
    for spec in specs:
        if isinstance(spec, FolderSource):
            names = FolderNames(spec, data)
            listed[id(spec)], refused = list_folder(spec)
            name_of.update({path: names(path)[0] for path in listed[id(spec)]})
            for link in refused:
                report.error(names(link)[0], "set aside: a link that leads outside the folder (not read)")
    stems: dict[str, str] = {}  # video stem -> the video collected into that folder
    with _progress() as bar:
        to_check = [p for spec in specs if isinstance(spec, FolderSource) and spec.dedupe for p in listed[id(spec)]]
        task = bar.add_task("(looking for duplicates)", total=len(to_check))
        kept = duplicates(to_check, lambda: bar.advance(task))
        bar.remove_task(task)
        for spec in specs:
            if isinstance(spec, FolderSource):
                collect_folder(spec, listed[id(spec)], FolderNames(spec, data), kept, name_of, collection, bar)
            else:
                for video in list_videos(spec):
                    collect_video(spec, video, data, collection, bar, stems)
    report.raise_if_strict(cfg.strict)
    if not collection.manifest:
        raise DataError(f"collect.sources: no usable image in {', '.join(spec.written for spec in specs)}")
    (out / "manifest.json").write_text(json.dumps(collection.manifest, indent=1) + "\n")
    report.write(out / "report.json", images=len(collection.manifest), **collection.counts())
