"""Stage 3, augment: ``augment.copies`` albumentations variants of every training image.

Reads the labels stage's train.json and the collected images; writes ``paths.augment``/images and
train.json (canonical COCO). The pipeline is ``augment.transforms`` (Hydra ``_target_`` entries) with
bounding boxes carried through; a face that loses more than ``1 - augment.min_visibility`` of its
area to the crop is dropped from that copy, so a crop that cuts the face away yields a negative.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import albumentations as A
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.progress import track

from facedet import coco
from facedet.images import read_rgb, write_image


def build_pipeline(cfg: DictConfig, seed: int) -> A.Compose:
    """The configured transforms as one bbox-aware, seeded albumentations pipeline."""
    transforms = [instantiate(OmegaConf.to_container(t)) for t in cfg.augment.transforms]
    bbox_params = A.BboxParams(format="pascal_voc", label_fields=["labels"], clip=True,
                               min_visibility=cfg.augment.min_visibility, filter_invalid_bboxes=True)
    return A.Compose(transforms, bbox_params=bbox_params, seed=seed)


def run(cfg: DictConfig) -> None:
    out = Path(cfg.paths.augment)
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    pipeline = build_pipeline(cfg, cfg.seed)
    source_dir = Path(cfg.paths.collect) / "images"
    augmented = []
    for image in track(coco.read(Path(cfg.paths.labels) / "train.json"), description="augment", transient=True):
        rgb = read_rgb(source_dir / image.file_name)
        for copy in range(cfg.augment.copies):
            result = pipeline(image=rgb, bboxes=image.boxes or [], labels=[1] * len(image.boxes))
            name = f"{Path(image.file_name).with_suffix('').as_posix()}_{copy:03d}.jpg"
            (out / "images" / name).parent.mkdir(parents=True, exist_ok=True)
            write_image(out / "images" / name, result["image"], quality=95)  # any file name (cv2.imwrite crashes)
            height, width = result["image"].shape[:2]
            augmented.append(coco.Image(name, width, height, [tuple(map(float, b)) for b in result["bboxes"]]))
    coco.write(augmented, out / "train.json")
