"""Stage 2, labels: the labels under ``paths.data`` -> canonical COCO files of train, val and test.

Reads the labels in ``labels.format`` (LabelMe by default; WIDER FACE, FDDB, COCO, YOLO, Pascal
VOC, see [`facedet.label_formats.formats`][]) and the collect stage's manifest; writes
``paths.labels``/{train,val,test}.json (file names relative to the collected images) and
``report.json``. Boxes are rescaled to the collected images' size. A picture the collect stage set
aside is reported there only (its ``report.json``), not again here.
"""

from __future__ import annotations

import json
import posixpath
import random
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from facedet import coco
from facedet.label_formats.registry import import_labels
from facedet.problems import ProblemReport

SPLITS = ("train", "val", "test")


def run(cfg: DictConfig) -> None:
    out = Path(cfg.paths.labels)
    out.mkdir(parents=True, exist_ok=True)
    report = ProblemReport("labels")
    options = OmegaConf.to_container(cfg.labels.options, resolve=True) or {}
    labelled = import_labels(cfg.labels.format, Path(cfg.paths.data), report, **options)
    manifest = {e["source"]: e for e in json.loads((Path(cfg.paths.collect) / "manifest.json").read_text())}
    # A picture the collect stage set aside is named in its report, with why: not a second time here.
    set_aside = {p["file"] for p in _collect_problems(Path(cfg.paths.collect)) if p["file"] not in manifest}
    report.problems = [p for p in report.problems if p.file not in set_aside]
    images = []
    for image in labelled:
        entry = manifest.get(image.file_name)
        if entry is None:
            continue  # the collect stage set it aside and reported why
        images.append(rescale(image, entry))
    report.raise_if_strict(cfg.strict)
    splits = split(images, cfg.split)
    for name in SPLITS:
        coco.write(splits[name], out / f"{name}.json")
    report.write(
        out / "report.json",
        images=len(images),
        faces=sum(len(i.boxes) for i in images),
        faces_with_landmarks=sum(sum(p is not None for p in i.landmarks) for i in images),
        negatives=sum(not i.boxes for i in images),
        **{f"{name}_images": len(splits[name]) for name in SPLITS},
    )


def _collect_problems(collect: Path) -> list[dict]:
    path = collect / "report.json"
    return json.loads(path.read_text())["problems"] if path.is_file() else []


def rescale(image: coco.Image, entry: dict) -> coco.Image:
    """The same faces on the collected copy of the image (which may be smaller)."""
    sx, sy = entry["width"] / image.width, entry["height"] / image.height

    def scaled(boxes: list[coco.Box]) -> list[coco.Box]:
        return [(x1 * sx, y1 * sy, x2 * sx, y2 * sy) for x1, y1, x2, y2 in boxes]

    landmarks = [tuple((x * sx, y * sy, v) for x, y, v in points) if points else None for points in image.landmarks]
    return coco.Image(
        entry["file"], entry["width"], entry["height"], scaled(image.boxes), scaled(image.ignore), landmarks
    )


def split(images: list[coco.Image], settings: DictConfig) -> dict[str, list[coco.Image]]:
    """Split seeded by ``settings.seed``, by ``settings.method``: ``random`` shares out faces and negatives
    separately in the same proportions; ``grouped`` shares out whole folders (capture sessions, videos) instead."""
    if settings.method == "grouped":
        groups: dict[str, list[coco.Image]] = {}
        for image in images:
            groups.setdefault(posixpath.dirname(image.file_name), []).append(image)
        units = [groups[name] for name in sorted(groups)]
    else:
        units = [[image] for image in sorted(images, key=lambda i: i.file_name)]
    result: dict[str, list[coco.Image]] = {name: [] for name in SPLITS}
    for stratum in ([u for u in units if any(i.boxes for i in u)], [u for u in units if not any(i.boxes for i in u)]):
        random.Random(settings.seed).shuffle(stratum)
        n_train = round(len(stratum) * settings.train)
        n_val = round(len(stratum) * settings.val)
        for name, part in zip(
            SPLITS, (stratum[:n_train], stratum[n_train : n_train + n_val], stratum[n_train + n_val :])
        ):
            result[name] += [image for unit in part for image in unit]
    return {name: sorted(items, key=lambda i: i.file_name) for name, items in result.items()}
