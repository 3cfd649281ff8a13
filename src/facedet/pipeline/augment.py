"""Stage 3, augment: where the training augmentation is defined and checked.

Reads ``cfg.augment`` (conf/augment/), the labels stage's train.json and the collected images; writes to
``paths.augment``: pipeline.yaml (albumentations' own serialisation of the pipeline, which the train
stage loads), preview.png (training images x ``augment.preview_draws`` draws, boxes drawn; a DVC plot,
and an artifact of the train stage's MLflow run) and stats.json (faces kept, too small, dropped per
draw). With ``augment.copies > 0`` (the seed tutorial's offline mode) it also writes that many
augmented copies of every training image to images/ and train.json, and the train stage trains on
those as they are; with 0 (the default) the train stage draws fresh augmentations every epoch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omegaconf import DictConfig
from rich.progress import track

from facedet import coco
from facedet.images import read_rgb, write_image
from facedet.landmarks import landmark_array
from facedet.training import augment


def run(cfg: DictConfig) -> None:
    out = Path(cfg.paths.augment)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pipeline = augment.build(cfg.augment)
    augment.save(pipeline, out / augment.PIPELINE_FILE)
    pipeline = augment.load(out / augment.PIPELINE_FILE)  # check and use what the train stage will load
    source_dir = Path(cfg.paths.collect) / "images"
    images = coco.read(Path(cfg.paths.labels) / "train.json")
    shown = [image for image in images if image.boxes][: cfg.augment.preview_images]
    grid = augment.preview(pipeline, shown, source_dir, cfg.augment.preview_draws, cfg.seed, read_rgb)
    write_image(out / "preview.png", grid)
    stats = augment.statistics(
        pipeline,
        images[: cfg.augment.stats_images],
        source_dir,
        cfg.augment.preview_draws,
        cfg.seed,
        cfg.augment.min_face,
        read_rgb,
    )
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    if cfg.augment.copies > 0:
        _materialise(pipeline, images, source_dir, out, cfg.augment.copies, cfg.seed)


def _materialise(pipeline, images: list[coco.Image], source_dir: Path, out: Path, copies: int, seed: int) -> None:
    """``copies`` seeded draws of every image as JPEG files and train.json (canonical COCO)."""
    (out / "images").mkdir()
    augmented = []
    for index, image in enumerate(track(images, description="augment", transient=True)):
        rgb = read_rgb(source_dir / image.file_name)
        for copy in range(copies):
            picture, boxes, _, points = augment.apply_with_landmarks(
                pipeline, rgb, image.boxes, landmark_array(image), augment.draw_seed(seed, copy, index)
            )
            name = f"{Path(image.file_name).with_suffix('').as_posix()}_{copy:03d}.jpg"
            (out / "images" / name).parent.mkdir(parents=True, exist_ok=True)
            write_image(out / "images" / name, picture, quality=95)  # any file name (cv2.imwrite crashes)
            height, width = picture.shape[:2]
            landmarks = [tuple(map(tuple, face.tolist())) if face[:, 2].any() else None for face in points]
            augmented.append(coco.Image(name, width, height, [tuple(map(float, b)) for b in boxes], [], landmarks))
    coco.write(augmented, out / "train.json")
