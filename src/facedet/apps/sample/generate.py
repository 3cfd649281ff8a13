"""The sample's pictures and LabelMe files, scene by scene, from one seed."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facedet.apps.sample.compose import MAX_FACE_FRACTION, Face, photometric, place_face
from facedet.apps.sample.pictures import background
from facedet.boxes import Box
from facedet.label_formats.labelme import rectangle, write_labelme

JPEG_QUALITY = 90


@dataclass(frozen=True)
class SampleSettings:
    n_images: int = 160  # total images
    negative_fraction: float = 0.2  # share of images with no face at all
    max_faces: int = 4  # face images hold 1..max_faces faces (uniform)
    width: int = 640
    height: int = 480
    seed: int = 0
    cut_fraction: float = 0.1  # share of faces placed partly outside the image
    max_rotation: float = 20.0  # in-plane rotation, uniform in +-max_rotation degrees


@contextmanager
def _same_pixels_on_every_cpu() -> Iterator[None]:
    """OpenCV's plain code paths only: its CPU-dispatched SIMD kernels and Intel IPP (which picks
    kernels by processor) round differently from one x86-64 machine to the next, and data.dvc pins
    the sample's bytes."""
    optimized = cv2.useOptimized()
    cv2.setUseOptimized(False)
    try:
        yield
    finally:
        cv2.setUseOptimized(optimized)


def generate_faces(out_dir: Path, settings: SampleSettings = SampleSettings()) -> list[list[Face]]:
    """Like `generate`, and return each image's faces with how they were made (source, angle, cut)."""
    with _same_pixels_on_every_cpu():
        return _generate_faces(Path(out_dir), settings)


def _generate_faces(out_dir: Path, settings: SampleSettings) -> list[list[Face]]:
    s = settings
    if (
        s.n_images < 0
        or not 0.0 <= s.negative_fraction <= 1.0
        or s.max_faces < 1
        or not 0.0 <= s.cut_fraction <= 1.0
        or not 0.0 <= s.max_rotation <= 90.0
    ):
        raise ValueError(f"invalid sample settings: {s}")
    if s.width < 32 or s.height < 32:
        raise ValueError(f"sample images must be at least 32x32, got {s.width}x{s.height}")
    images_dir, labels_dir = out_dir / "images", out_dir / "labels"
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*images_dir.glob("sample_*.jpg"), *labels_dir.glob("sample_*.json")]:
        stale.unlink()  # a previous, larger or different sample must not leave files behind

    rng = np.random.default_rng(s.seed)
    n_neg = int(round(s.n_images * s.negative_fraction))
    negatives = set(rng.permutation(s.n_images)[:n_neg].tolist())
    max_side = MAX_FACE_FRACTION * min(s.width, s.height)

    scenes: list[list[Face]] = []
    for i in range(s.n_images):
        name = f"sample_{i:04d}"
        canvas = background(rng, s.width, s.height)
        faces: list[Face] = []
        if i not in negatives:
            k = int(rng.integers(1, s.max_faces + 1))
            taken: list[tuple[Box, Box]] = []
            for _ in range(k):
                face = place_face(canvas, rng, max_side / math.sqrt(k), s.cut_fraction, s.max_rotation, taken)
                if face is not None:
                    faces.append(face)
        image = photometric(canvas, rng)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"could not encode {name}.jpg")
        (images_dir / f"{name}.jpg").write_bytes(buf.tobytes())
        if faces:
            write_labelme(
                labels_dir / f"{name}.json",
                images_dir / f"{name}.jpg",
                [rectangle("face", f.box) for f in faces],
                s.width,
                s.height,
            )
        scenes.append(faces)
    return scenes


def generate(out_dir: Path, settings: SampleSettings = SampleSettings()) -> int:
    """Write out_dir/images/sample_NNNN.jpg and out_dir/labels/sample_NNNN.json; return the number of images."""
    return len(generate_faces(out_dir, settings))
