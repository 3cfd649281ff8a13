"""A deterministic, embedded sample dataset built from real pictures shipped inside installed packages.

No network: faces come from ``skimage.data.astronaut()`` (Eileen Collins), ``skimage.data.camera()``
(the cameraman, grayscale, three-quarter profile), matplotlib's ``grace_hopper.jpg`` and the first
100 face crops of ``skimage.data.lfw_subset()`` (25x25 grayscale, upscaled: small, blurry faces).
Backgrounds are face-free pictures from scikit-learn and scikit-image.

Each face is cut as a head patch (the face box plus a margin), rescaled, flipped, tinted and pasted
with a feathered alpha mask onto a random crop of a background; its label is the hand-drawn face box
carried through the exact same scale and offset. The output is what a person has after labelling
in labelme 5.4.1 with ``--nodata``: ``images/sample_NNNN.jpg`` and, for images with faces only,
``labels/sample_NNNN.json``. Same settings -> byte-identical files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

LABELME_VERSION = "5.4.1"
JPEG_QUALITY = 90

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

# Source -> (draw weight, largest face side in px it is scaled up to).
FACE_SOURCES = {
    "astronaut": (0.22, 300.0),
    "hopper": (0.22, 300.0),
    "camera": (0.16, 220.0),
    "lfw": (0.40, 120.0),
}
MIN_FACE = 40.0
MAX_FACE = 300.0
HEAD_MARGIN = 0.35  # head patch = face box grown by this share of its side on every side
INNER_GROW = 0.08  # fully opaque core = face box grown by this share; feathered out to the patch edge
OVAL_GROW, OVAL_FADE = 1.12, 1.4  # oval mask: opaque up to 1.12x the face box's inscribed ellipse, 0 at 1.4x

# Face-free backgrounds available offline (no pooch download needed).
SKIMAGE_BACKGROUNDS = ("coffee", "rocket", "chelsea", "hubble_deep_field", "brick", "grass", "gravel",
                       "coins", "page", "moon", "clock", "text")
SKLEARN_BACKGROUNDS = ("china.jpg", "flower.jpg")
_BACKGROUND_NAMES = SKLEARN_BACKGROUNDS + SKIMAGE_BACKGROUNDS  # the order _backgrounds() loads them in
UNFLIPPABLE = ("page", "text", "clock")  # mirrored writing would look wrong

# Skin tones (sRGB / 255), light to dark, used to tint faces.
SKIN_TONES = np.array([
    [1.00, 0.87, 0.77],
    [0.95, 0.78, 0.64],
    [0.88, 0.67, 0.50],
    [0.78, 0.55, 0.37],
    [0.58, 0.39, 0.25],
    [0.40, 0.26, 0.17],
], dtype=np.float32)


@dataclass(frozen=True)
class SampleSettings:
    n_images: int = 160  # total images
    negative_fraction: float = 0.2  # share of images with no face at all
    max_faces: int = 1  # at most this many faces per image
    width: int = 640
    height: int = 480
    seed: int = 0


@dataclass(frozen=True)
class _Head:
    """A head patch (HxW or HxWx3 uint8, RGB) and the face box inside it, (x1, y1, x2, y2)."""

    patch: np.ndarray
    box: tuple[float, float, float, float]
    oval: bool = False  # feather to an oval around the face (tight crops) instead of to the patch edge


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def _cut(image: np.ndarray, box: tuple[float, float, float, float]) -> _Head:
    x1, y1, x2, y2 = box
    h, w = image.shape[:2]
    mx, my = HEAD_MARGIN * (x2 - x1), HEAD_MARGIN * (y2 - y1)
    px1, py1 = max(0, int(math.floor(x1 - mx))), max(0, int(math.floor(y1 - my)))
    px2, py2 = min(w, int(math.ceil(x2 + mx))), min(h, int(math.ceil(y2 + my)))
    return _Head(np.ascontiguousarray(image[py1:py2, px1:px2]), (x1 - px1, y1 - py1, x2 - px1, y2 - py1))


@lru_cache(maxsize=1)
def _heads() -> dict[str, tuple[_Head, ...]]:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        hopper = np.asarray(img.convert("RGB"))
    lfw = (np.clip(skimage.data.lfw_subset()[:100], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    x1, y1, x2, y2 = LFW_FACE
    p = LFW_PAD
    lfw_heads = tuple(_Head(cv2.copyMakeBorder(face, p, p, p, p, cv2.BORDER_REPLICATE),
                            (x1 + p, y1 + p, x2 + p, y2 + p), oval=True) for face in lfw)
    return {
        "astronaut": (_cut(skimage.data.astronaut(), ASTRONAUT_FACE),),
        "hopper": (_cut(hopper, HOPPER_FACE),),
        "camera": (_cut(skimage.data.camera(), CAMERA_FACE),),
        "lfw": lfw_heads,
    }


@lru_cache(maxsize=1)
def _backgrounds() -> tuple[np.ndarray, ...]:
    import skimage.data
    from sklearn.datasets import load_sample_image

    images = [_rgb(load_sample_image(name)) for name in SKLEARN_BACKGROUNDS]
    images += [_rgb(getattr(skimage.data, name)()) for name in SKIMAGE_BACKGROUNDS]
    return tuple(images)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    backgrounds = _backgrounds()
    index = int(rng.integers(len(backgrounds)))
    src = backgrounds[index]
    sh, sw = src.shape[:2]
    aspect = width / height
    full_w = min(float(sw), sh * aspect)
    crop_w = max(8, int(round(full_w * rng.uniform(0.45, 1.0))))
    crop_h = max(8, min(sh, int(round(crop_w / aspect))))
    crop_w = min(sw, crop_w)
    x0 = int(rng.integers(0, sw - crop_w + 1))
    y0 = int(rng.integers(0, sh - crop_h + 1))
    crop = src[y0:y0 + crop_h, x0:x0 + crop_w]
    interp = cv2.INTER_AREA if crop_w > width else cv2.INTER_LINEAR
    out = cv2.resize(crop, (width, height), interpolation=interp)
    if rng.random() < 0.5 and _BACKGROUND_NAMES[index] not in UNFLIPPABLE:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def _tint(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour a head patch with a random skin tone (always for gray sources) and vary its contrast."""
    tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    gain = rng.uniform(1.15, 1.4)
    if patch.ndim == 2:
        lum = patch.astype(np.float32)[..., None]
        out = lum * tone * gain
    else:
        rgb = patch.astype(np.float32)
        lum = (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        strength = rng.uniform(0.0, 0.6)
        out = rgb * (1.0 - strength) + lum * tone * gain * strength
    contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-20.0, 20.0)
    mean = float(out.mean())
    out = (out - mean) * contrast + mean + brightness
    return np.clip(out, 0, 255).astype(np.uint8)


def _alpha(shape: tuple[int, int], inner: tuple[float, float, float, float]) -> np.ndarray:
    """1 inside ``inner`` (a rectangle), smoothly down to 0 at the patch border, rounded corners."""
    h, w = shape
    ix1, iy1, ix2, iy2 = inner
    xs = np.arange(w, dtype=np.float32) + 0.5
    ys = np.arange(h, dtype=np.float32) + 0.5
    dx = np.where(xs < ix1, (ix1 - xs) / max(ix1, 1.0), np.where(xs > ix2, (xs - ix2) / max(w - ix2, 1.0), 0.0))
    dy = np.where(ys < iy1, (iy1 - ys) / max(iy1, 1.0), np.where(ys > iy2, (ys - iy2) / max(h - iy2, 1.0), 0.0))
    t = np.clip(1.0 - np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _oval_alpha(shape: tuple[int, int], box: list[float]) -> np.ndarray:
    """1 inside an ellipse slightly larger than ``box`` (cheeks and chin opaque), 0 near its corners."""
    h, w = shape
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ax, ay = OVAL_GROW * (box[2] - box[0]) / 2, OVAL_GROW * (box[3] - box[1]) / 2
    xs = (np.arange(w, dtype=np.float32) + 0.5 - cx) / ax
    ys = (np.arange(h, dtype=np.float32) + 0.5 - cy) / ay
    r = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    t = np.clip((OVAL_FADE - r) / (OVAL_FADE - 1.0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_face(canvas: np.ndarray, rng: np.random.Generator, max_side: float,
                taken: list[tuple[tuple[float, ...], tuple[float, ...]]]) -> tuple[float, float, float, float] | None:
    """Paste one head onto ``canvas`` (in place); return its face box, or None if it does not fit."""
    height, width = canvas.shape[:2]
    names = list(FACE_SOURCES)
    weights = np.array([FACE_SOURCES[n][0] for n in names])
    name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    heads = _heads()[name]
    head = heads[int(rng.integers(len(heads)))]
    lo = min(MIN_FACE, 0.5 * min(width, height))
    hi = max(lo, min(FACE_SOURCES[name][1], max_side))
    side = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    flip = bool(rng.random() < 0.5)
    tinted = _tint(head.patch, rng)
    blur_sigma = float(rng.uniform(0.5, 1.6)) if rng.random() < 0.25 else 0.0

    for _shrink in range(6):
        bx1, by1, bx2, by2 = head.box
        ph, pw = tinted.shape[:2]
        scale = side / max(bx2 - bx1, by2 - by1)
        nw, nh = max(2, int(round(pw * scale))), max(2, int(round(ph * scale)))
        sx, sy = nw / pw, nh / ph  # exact scale cv2.resize applies (edge coordinates)
        box = [bx1 * sx, by1 * sy, bx2 * sx, by2 * sy]
        if flip:
            box = [nw - box[2], box[1], nw - box[0], box[3]]
        fw, fh = box[2] - box[0], box[3] - box[1]
        if fw < width and fh < height:
            for _try in range(40):
                ox = int(rng.integers(int(math.ceil(-box[0])), int(math.floor(width - box[2])) + 1))
                oy = int(rng.integers(int(math.ceil(-box[1])), int(math.floor(height - box[3])) + 1))
                face = (box[0] + ox, box[1] + oy, box[2] + ox, box[3] + oy)
                patch_rect = (float(ox), float(oy), float(ox + nw), float(oy + nh))
                if any(_overlaps(face, p) or _overlaps(f, patch_rect) for f, p in taken):
                    continue
                _paste(canvas, tinted, (nw, nh), flip, blur_sigma, box, (ox, oy), head.oval)
                taken.append((face, patch_rect))
                return face
        side *= 0.75
        if side < lo * 0.75:
            break
    return None


def _paste(canvas: np.ndarray, patch: np.ndarray, size: tuple[int, int], flip: bool, blur_sigma: float,
           box: list[float], offset: tuple[int, int], oval: bool) -> None:
    nw, nh = size
    interp = cv2.INTER_AREA if nw < patch.shape[1] else cv2.INTER_CUBIC
    img = cv2.resize(patch, (nw, nh), interpolation=interp)
    if flip:
        img = img[:, ::-1]
    if blur_sigma > 0:
        img = cv2.GaussianBlur(np.ascontiguousarray(img), (0, 0), blur_sigma)
    if oval:
        alpha = _oval_alpha((nh, nw), box)[..., None]
    else:
        gx, gy = INNER_GROW * (box[2] - box[0]), INNER_GROW * (box[3] - box[1])
        inner = (max(0.0, box[0] - gx), max(0.0, box[1] - gy), min(float(nw), box[2] + gx),
                 min(float(nh), box[3] + gy))
        alpha = _alpha((nh, nw), inner)[..., None]
    ox, oy = offset
    height, width = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(width, ox + nw), min(height, oy + nh)
    src = img[y0 - oy:y1 - oy, x0 - ox:x1 - ox].astype(np.float32)
    a = alpha[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    dst = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = np.clip(dst * (1.0 - a) + src * a + 0.5, 0, 255).astype(np.uint8)


def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Whole-image brightness/contrast, colour cast, and sometimes blur and sensor noise."""
    out = image.astype(np.float32)
    contrast, brightness = rng.uniform(0.75, 1.25), rng.uniform(-30.0, 30.0)
    cast = rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    mean = float(out.mean())
    out = ((out - mean) * contrast + mean + brightness) * cast
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.6, 1.4)))
    if rng.random() < 0.3:
        out = out + rng.normal(0.0, rng.uniform(2.0, 6.0), size=out.shape).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _labelme(name: str, boxes: list[tuple[float, float, float, float]], width: int, height: int) -> str:
    shapes = [{
        "label": "face",
        "points": [[round(float(x1), 2), round(float(y1), 2)], [round(float(x2), 2), round(float(y2), 2)]],
        "group_id": None,
        "description": "",
        "shape_type": "rectangle",
        "flags": {},
        "mask": None,
    } for x1, y1, x2, y2 in boxes]
    data = {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": f"../images/{name}.jpg",
        "imageData": None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }
    return json.dumps(data, indent=2)


def generate(out_dir: Path, settings: SampleSettings = SampleSettings()) -> int:
    """Write out_dir/images/sample_NNNN.jpg and out_dir/labels/sample_NNNN.json; return the number of images."""
    s = settings
    if s.n_images < 0 or not 0.0 <= s.negative_fraction <= 1.0 or s.max_faces < 1:
        raise ValueError(f"invalid sample settings: {s}")
    if s.width < 32 or s.height < 32:
        raise ValueError(f"sample images must be at least 32x32, got {s.width}x{s.height}")
    out_dir = Path(out_dir)
    images_dir, labels_dir = out_dir / "images", out_dir / "labels"
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*images_dir.glob("sample_*.jpg"), *labels_dir.glob("sample_*.json")]:
        stale.unlink()  # a previous, larger or different sample must not leave files behind

    rng = np.random.default_rng(s.seed)
    n_neg = int(round(s.n_images * s.negative_fraction))
    negatives = set(rng.permutation(s.n_images)[:n_neg].tolist())
    max_side = min(MAX_FACE, 0.9 * min(s.width, s.height))

    for i in range(s.n_images):
        name = f"sample_{i:04d}"
        canvas = _background(rng, s.width, s.height)
        boxes: list[tuple[float, float, float, float]] = []
        if i not in negatives:
            k = int(rng.integers(1, s.max_faces + 1))
            cap = max_side / math.sqrt(k)
            taken: list = []
            for _ in range(k):
                face = _place_face(canvas, rng, cap, taken)
                if face is not None:
                    boxes.append(face)
        image = _photometric(canvas, rng)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"could not encode {name}.jpg")
        (images_dir / f"{name}.jpg").write_bytes(buf.tobytes())
        if boxes:
            (labels_dir / f"{name}.json").write_bytes(_labelme(name, boxes, s.width, s.height).encode("utf-8"))
    return s.n_images
