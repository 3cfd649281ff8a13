"""The sample's raw material: real faces and face-free backgrounds that ship inside installed packages,
with hand-drawn face boxes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from facedet.boxes import Box

# Face boxes (x1, y1, x2, y2) in pixels of the original pictures, forehead/hairline to chin and
# cheek/ear to cheek/ear, as one would drag them in labelme. Found by drawing candidate boxes (and
# OpenCV's Haar cascade hits, where it fires) on 3x zooms with a 10 px grid and checking by eye.
ASTRONAUT_FACE = (174.0, 72.0, 272.0, 168.0)  # skimage astronaut 512x512; Haar: (175, 66, 272, 163)
HOPPER_FACE = (162.0, 134.0, 368.0, 328.0)  # grace_hopper.jpg 512x600, hat brim to chin; Haar: (152, 103, 380, 331)
CAMERA_FACE = (180.0, 122.0, 258.0, 198.0)  # skimage camera 512x512, ear to nose/camera; Haar: no hit (profile)
# lfw_subset()[:100] are 25x25 crops cut tight around the face: the forehead is cut at the top, the
# chin is at the bottom edge, the cheeks are about 2 px in from each side.
LFW_FACE = (2.0, 0.0, 23.0, 24.5)
LFW_PAD = 4  # replicate-pad the tiny crops so the feathered edge falls outside the face

# Source -> (draw weight, largest face side in px it is scaled up to; about 4x its own face at most,
# 2x for Grace Hopper, whose face is already 206 px). A face's size is drawn first, then its source
# among those that reach that size, so the size distribution does not depend on the sources.
FACE_SOURCES = {
    "astronaut": (0.22, 400.0),
    "hopper": (0.22, 440.0),
    "camera": (0.16, 300.0),
    "lfw": (0.40, 100.0),
}

HEAD_MARGIN = 0.35  # head patch = face box grown by this share of its side on every side

# Face-free backgrounds available offline (no pooch download needed).
SKIMAGE_BACKGROUNDS = (
    "coffee",
    "rocket",
    "chelsea",
    "hubble_deep_field",
    "brick",
    "grass",
    "gravel",
    "coins",
    "page",
    "moon",
    "clock",
    "text",
)
SKLEARN_BACKGROUNDS = ("china.jpg", "flower.jpg")
BACKGROUND_NAMES = SKLEARN_BACKGROUNDS + SKIMAGE_BACKGROUNDS  # the order backgrounds() loads them in
UNFLIPPABLE = ("page", "text", "clock")  # mirrored writing would look wrong


@dataclass(frozen=True)
class Head:
    """A head patch (HxW or HxWx3 uint8, RGB) and the face box inside it, (x1, y1, x2, y2)."""

    patch: np.ndarray
    box: Box
    oval: bool = False  # feather to an oval around the face (tight crops) instead of to the patch edge


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def cut_head(image: np.ndarray, box: Box) -> Head:
    x1, y1, x2, y2 = box
    h, w = image.shape[:2]
    mx, my = HEAD_MARGIN * (x2 - x1), HEAD_MARGIN * (y2 - y1)
    px1, py1 = max(0, int(math.floor(x1 - mx))), max(0, int(math.floor(y1 - my)))
    px2, py2 = min(w, int(math.ceil(x2 + mx))), min(h, int(math.ceil(y2 + my)))
    return Head(np.ascontiguousarray(image[py1:py2, px1:px2]), (x1 - px1, y1 - py1, x2 - px1, y2 - py1))


@lru_cache(maxsize=1)
def heads() -> dict[str, tuple[Head, ...]]:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        hopper = np.asarray(img.convert("RGB"))
    lfw = (np.clip(skimage.data.lfw_subset()[:100], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    x1, y1, x2, y2 = LFW_FACE
    p = LFW_PAD
    lfw_heads = tuple(
        Head(cv2.copyMakeBorder(face, p, p, p, p, cv2.BORDER_REPLICATE), (x1 + p, y1 + p, x2 + p, y2 + p), oval=True)
        for face in lfw
    )
    return {
        "astronaut": (cut_head(skimage.data.astronaut(), ASTRONAUT_FACE),),
        "hopper": (cut_head(hopper, HOPPER_FACE),),
        "camera": (cut_head(skimage.data.camera(), CAMERA_FACE),),
        "lfw": lfw_heads,
    }


@lru_cache(maxsize=1)
def backgrounds() -> tuple[np.ndarray, ...]:
    import skimage.data
    from sklearn.datasets import load_sample_image

    images = [_rgb(load_sample_image(name)) for name in SKLEARN_BACKGROUNDS]
    images += [_rgb(getattr(skimage.data, name)()) for name in SKIMAGE_BACKGROUNDS]
    return tuple(images)


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    pictures = backgrounds()
    index = int(rng.integers(len(pictures)))
    src = pictures[index]
    sh, sw = src.shape[:2]
    aspect = width / height
    full_w = min(float(sw), sh * aspect)
    crop_w = max(8, int(round(full_w * rng.uniform(0.45, 1.0))))
    crop_h = max(8, min(sh, int(round(crop_w / aspect))))
    crop_w = min(sw, crop_w)
    x0 = int(rng.integers(0, sw - crop_w + 1))
    y0 = int(rng.integers(0, sh - crop_h + 1))
    crop = src[y0 : y0 + crop_h, x0 : x0 + crop_w]
    interp = cv2.INTER_AREA if crop_w > width else cv2.INTER_LINEAR
    out = cv2.resize(crop, (width, height), interpolation=interp)
    if rng.random() < 0.5 and BACKGROUND_NAMES[index] not in UNFLIPPABLE:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)
