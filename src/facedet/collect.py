"""Stage 1, collect: normalise the raw images into one clean collection plus a manifest.

Reads ``paths.data`` (images anywhere below it); writes ``paths.collect``/images (JPEG, RGB, EXIF
orientation applied, longest side at most ``collect.max_side``), ``manifest.json`` (one entry per
collected image: its source, source size and size) and ``report.json`` (files set aside and why).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
from omegaconf import DictConfig
from rich.progress import track

from facedet.images import ImageError, list_images, read_rgb
from facedet.problems import ProblemReport


def run(cfg: DictConfig) -> None:
    raw, out = Path(cfg.paths.data), Path(cfg.paths.collect)
    if not raw.is_dir():
        raise FileNotFoundError(f"paths.data: {raw} is not a folder of images")
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    report = ProblemReport("collect")
    manifest, written = [], {}
    for source in track(list_images(raw), description="collect", transient=True):
        name = source.relative_to(raw).as_posix()
        try:
            rgb = read_rgb(source)
        except ImageError as err:
            report.error(name, f"set aside: {err}")
            continue
        target = Path(name).with_suffix(".jpg").as_posix()
        if target in written:
            report.error(name, f"set aside: collects to the same file as {written[target]}")
            continue
        written[target] = name
        height, width = rgb.shape[:2]
        scale = min(1.0, cfg.collect.max_side / max(height, width))
        if scale < 1.0:
            rgb = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        (out / "images" / target).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / "images" / target), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, cfg.collect.jpeg_quality])
        manifest.append({"file": target, "source": name, "width": rgb.shape[1], "height": rgb.shape[0],
                         "source_width": width, "source_height": height,
                         "sha256": hashlib.sha256(source.read_bytes()).hexdigest()})
    report.raise_if_strict(cfg.strict)
    if not manifest:
        raise ImageError(f"paths.data: no usable image under {raw}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    report.write(out / "report.json", images=len(manifest))
