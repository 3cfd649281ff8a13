"""Stage 2, labels: LabelMe files -> the canonical COCO files of the train, val and test splits.

Reads the LabelMe JSON under ``paths.data`` and the collect stage's manifest; writes
``paths.labels``/{train,val,test}.json (file names relative to the collected images) and
``report.json``. Boxes are rescaled to the collected images' size.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from omegaconf import DictConfig

from facedet import coco
from facedet.labels.labelme import import_folder
from facedet.problems import ProblemReport

SPLITS = ("train", "val", "test")


def run(cfg: DictConfig) -> None:
    out = Path(cfg.paths.labels)
    out.mkdir(parents=True, exist_ok=True)
    report = ProblemReport("labels")
    labelled = import_folder(Path(cfg.paths.data), report, labels=list(cfg.labels.names))
    manifest = {e["source"]: e for e in json.loads((Path(cfg.paths.collect) / "manifest.json").read_text())}
    images = []
    for image in labelled:
        entry = manifest.get(image.file_name)
        if entry is None:
            continue  # the collect stage set it aside and reported why
        images.append(rescale(image, entry))
    report.raise_if_strict(cfg.strict)
    splits = split(images, dict(cfg.labels.split), cfg.seed)
    for name in SPLITS:
        coco.write(splits[name], out / f"{name}.json")
    report.write(out / "report.json", images=len(images),
                 faces=sum(len(i.boxes) for i in images),
                 negatives=sum(not i.boxes for i in images),
                 **{f"{name}_images": len(splits[name]) for name in SPLITS})


def rescale(image: coco.Image, entry: dict) -> coco.Image:
    """The same faces on the collected copy of the image (which may be smaller)."""
    sx, sy = entry["width"] / image.width, entry["height"] / image.height
    return coco.Image(entry["file"], entry["width"], entry["height"],
                      [(x1 * sx, y1 * sy, x2 * sx, y2 * sy) for x1, y1, x2, y2 in image.boxes])


def split(images: list[coco.Image], fractions: dict[str, float], seed: int) -> dict[str, list[coco.Image]]:
    """Seeded split, stratified so faces and negatives are shared out in the same proportions."""
    result: dict[str, list[coco.Image]] = {name: [] for name in SPLITS}
    for group in ([i for i in images if i.boxes], [i for i in images if not i.boxes]):
        group = sorted(group, key=lambda i: i.file_name)
        random.Random(seed).shuffle(group)
        n_train = round(len(group) * fractions["train"])
        n_val = round(len(group) * fractions["val"])
        result["train"] += group[:n_train]
        result["val"] += group[n_train:n_train + n_val]
        result["test"] += group[n_train + n_val:]
    return {name: sorted(items, key=lambda i: i.file_name) for name, items in result.items()}
