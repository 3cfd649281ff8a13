"""A deterministic, embedded sample dataset built from real pictures shipped inside installed packages.

No network: faces come from ``skimage.data.astronaut()`` (Eileen Collins), ``skimage.data.camera()``
(the cameraman, grayscale, three-quarter profile), matplotlib's ``grace_hopper.jpg`` and the first
100 face crops of ``skimage.data.lfw_subset()`` (25x25 grayscale, upscaled: small, blurry faces).
Backgrounds are face-free pictures from scikit-learn and scikit-image.

Scenes hold 0 to ``max_faces`` faces: ``negative_fraction`` of the images have none, the others draw
their face count uniformly from 1..max_faces. Face sizes (the longer side of the face box) are
log-uniform from 12 px up to 85 % of the shorter image side divided by sqrt(face count), so scenes
with several faces hold smaller ones. Each face is cut as a head patch (the face box plus a margin),
rescaled, flipped, tinted, lit from one side, sometimes blurred, rotated in-plane by up to
``max_rotation`` degrees and pasted with a feathered alpha mask onto a random crop of a background.
Its label is the hand-drawn face box carried through the exact same geometry: the box's centre
follows the rotation, and the label is the axis-aligned box of the rotated ellipse inscribed in the
face box (see :func:`inscribed_ellipse_box`; the box of the rotated corners would be too loose on a face).
About ``cut_fraction`` of the faces are placed partly outside the image; their label is the visible
part (the box clipped to the image), and a face with less than 45 % of its box visible is never
placed. Face boxes of one image barely overlap (each covers at most 10 % of the other's area).

The output is what a person has after labelling in labelme 5.4.1 with ``--nodata``:
``images/sample_NNNN.jpg`` and, for images with faces only, ``labels/sample_NNNN.json``.
Same settings -> byte-identical files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from facedet.boxes import Box, clip_box, ellipse_box
from facedet.labels.labelme import rectangle, write_labelme

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

# Source -> (draw weight, largest face side in px it is scaled up to; about 4x its own face at most,
# 2x for Grace Hopper, whose face is already 206 px). A face's size is drawn first, then its source
# among those that reach that size, so the size distribution does not depend on the sources.
FACE_SOURCES = {
    "astronaut": (0.22, 400.0),
    "hopper": (0.22, 440.0),
    "camera": (0.16, 300.0),
    "lfw": (0.40, 100.0),
}
MIN_FACE = 12.0  # smallest face side in px
MAX_FACE_FRACTION = 0.85  # largest face side, as a share of the shorter image side (one-face images)
MIN_CUT_FACE = 24.0  # faces cut by the image border are drawn from this size up
MIN_VISIBLE = 0.45  # a cut face keeps at least this share of its (label) box inside the image
MAX_COVER = 0.10  # a face box may cover at most this share of another face box
MAX_PATCH_COVER = 0.25  # a later head patch may cover at most this share of an earlier face box
HEAD_MARGIN = 0.35  # head patch = face box grown by this share of its side on every side
INNER_GROW = 0.08  # fully opaque core = face box grown by this share; feathered out to the patch edge
OVAL_GROW, OVAL_FADE = 1.12, 1.4  # oval mask: opaque up to 1.12x the face box's inscribed ellipse, 0 at 1.4x

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
_BACKGROUND_NAMES = SKLEARN_BACKGROUNDS + SKIMAGE_BACKGROUNDS  # the order _backgrounds() loads them in
UNFLIPPABLE = ("page", "text", "clock")  # mirrored writing would look wrong

# Skin tones (sRGB / 255), light to dark, used to tint faces.
SKIN_TONES = np.array(
    [
        [1.00, 0.87, 0.77],
        [0.95, 0.78, 0.64],
        [0.88, 0.67, 0.50],
        [0.78, 0.55, 0.37],
        [0.58, 0.39, 0.25],
        [0.40, 0.26, 0.17],
    ],
    dtype=np.float32,
)


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


@dataclass(frozen=True)
class Face:
    """One pasted face: its label (the visible box, clipped to the image) and how it was made."""

    box: Box  # the label, as written to the LabelMe file (before rounding to 0.01 px)
    full_box: Box  # the label box before clipping to the image (== box unless cut)
    source: str  # key of FACE_SOURCES
    angle: float  # in-plane rotation, degrees
    cut: bool  # placed partly outside the image on purpose


@dataclass(frozen=True)
class _Head:
    """A head patch (HxW or HxWx3 uint8, RGB) and the face box inside it, (x1, y1, x2, y2)."""

    patch: np.ndarray
    box: Box
    oval: bool = False  # feather to an oval around the face (tight crops) instead of to the patch edge


def inscribed_ellipse_box(box: Box, angle: float) -> Box:
    """Axis-aligned box of the ellipse inscribed in ``box`` after rotating it by ``angle`` degrees about its centre."""
    x1, y1, x2, y2 = box
    return ellipse_box((x1 + x2) / 2.0, (y1 + y2) / 2.0, (x2 - x1) / 2.0, (y2 - y1) / 2.0, math.radians(angle))


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def _cut(image: np.ndarray, box: Box) -> _Head:
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
    lfw_heads = tuple(
        _Head(cv2.copyMakeBorder(face, p, p, p, p, cv2.BORDER_REPLICATE), (x1 + p, y1 + p, x2 + p, y2 + p), oval=True)
        for face in lfw
    )
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
    crop = src[y0 : y0 + crop_h, x0 : x0 + crop_w]
    interp = cv2.INTER_AREA if crop_w > width else cv2.INTER_LINEAR
    out = cv2.resize(crop, (width, height), interpolation=interp)
    if rng.random() < 0.5 and _BACKGROUND_NAMES[index] not in UNFLIPPABLE:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


# data.dvc pins the sample's bytes, so no product below goes through BLAS (``@``, ``np.dot``): its
# kernels, chosen per processor, sum in different orders. Separate multiplies and adds round the
# same on every IEEE 754 machine.
def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an HxWx3 float32 RGB array."""
    return rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114)


def _rotate(c: float, s: float, x: float, y: float) -> tuple[float, float]:
    """(x, y) turned by the rotation matrix [[c, s], [-s, c]]."""
    return c * x + s * y, -s * x + c * y


def _tint(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour a head patch with a random skin tone (always for gray sources) and vary its contrast."""
    tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    gain = rng.uniform(1.15, 1.4)
    if patch.ndim == 2:
        lum = patch.astype(np.float32)[..., None]
        out = lum * tone * gain
    else:
        rgb = patch.astype(np.float32)
        lum = _luma(rgb)[..., None]
        strength = rng.uniform(0.0, 0.6)
        out = rgb * (1.0 - strength) + lum * tone * gain * strength
    contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-20.0, 20.0)
    mean = float(out.mean())
    out = (out - mean) * contrast + mean + brightness
    return np.clip(out, 0, 255).astype(np.uint8)


def _alpha(shape: tuple[int, int], inner: Box) -> np.ndarray:
    """1 inside ``inner`` (a rectangle), smoothly down to 0 at the patch border, rounded corners."""
    h, w = shape
    ix1, iy1, ix2, iy2 = inner
    xs = np.arange(w, dtype=np.float32) + 0.5
    ys = np.arange(h, dtype=np.float32) + 0.5
    dx = np.where(xs < ix1, (ix1 - xs) / max(ix1, 1.0), np.where(xs > ix2, (xs - ix2) / max(w - ix2, 1.0), 0.0))
    dy = np.where(ys < iy1, (iy1 - ys) / max(iy1, 1.0), np.where(ys > iy2, (ys - iy2) / max(h - iy2, 1.0), 0.0))
    t = np.clip(1.0 - np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _oval_alpha(shape: tuple[int, int], box: Box) -> np.ndarray:
    """1 inside an ellipse slightly larger than ``box`` (cheeks and chin opaque), 0 near its corners."""
    h, w = shape
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ax, ay = OVAL_GROW * (box[2] - box[0]) / 2, OVAL_GROW * (box[3] - box[1]) / 2
    xs = (np.arange(w, dtype=np.float32) + 0.5 - cx) / ax
    ys = (np.arange(h, dtype=np.float32) + 0.5 - cy) / ay
    r = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    t = np.clip((OVAL_FADE - r) / (OVAL_FADE - 1.0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _inter(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _area(a: Box) -> float:
    return max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])


@dataclass(frozen=True)
class _Geometry:
    """A head scaled to one face size, flipped and rotated: where its pixels and its label go."""

    scale: tuple[int, int]  # (nw, nh): the size the head patch is resized to
    matrix: np.ndarray | None  # 2x3 cv2.warpAffine matrix (pixel-centre coordinates), None: no rotation
    size: tuple[int, int]  # (w, h) of the rotated patch
    face: Box  # the face box in the resized, flipped, unrotated patch
    label: Box  # the label box in the rotated patch


def _geometry(head: _Head, side: float, flip: bool, angle: float) -> _Geometry:
    bx1, by1, bx2, by2 = head.box
    ph, pw = head.patch.shape[:2]
    scale = side / max(bx2 - bx1, by2 - by1)
    nw, nh = max(2, int(round(pw * scale))), max(2, int(round(ph * scale)))
    sx, sy = nw / pw, nh / ph  # exact scale cv2.resize applies (edge coordinates)
    face = (bx1 * sx, by1 * sy, bx2 * sx, by2 * sy)
    if flip:
        face = (nw - face[2], face[1], nw - face[0], face[3])
    if angle == 0.0:
        return _Geometry((nw, nh), None, (nw, nh), face, face)
    # Rotate about the face centre c (edge coordinates): p' = R (p - c) + t, t chosen so that the
    # rotated patch starts at 0. In cv2's pixel-centre coordinates (q = p - 0.5) that is
    # q' = R q + R (0.5 - c) + t - 0.5.
    cx, cy = (face[0] + face[2]) / 2.0, (face[1] + face[3]) / 2.0
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    # Positive angle: counter-clockwise on screen (y down).
    turned = [_rotate(c, s, x - cx, y - cy) for x, y in ((0.0, 0.0), (nw, 0.0), (0.0, nh), (nw, nh))]
    lo = (min(p[0] for p in turned), min(p[1] for p in turned))
    hi = (max(p[0] for p in turned), max(p[1] for p in turned))
    t = (-lo[0], -lo[1])
    out_w, out_h = int(math.ceil(hi[0] - lo[0])), int(math.ceil(hi[1] - lo[1]))
    shift = _rotate(c, s, 0.5 - cx, 0.5 - cy)
    matrix = np.array([[c, s, shift[0] + t[0] - 0.5], [-s, c, shift[1] + t[1] - 0.5]], dtype=np.float64)
    fw, fh = face[2] - face[0], face[3] - face[1]
    label = inscribed_ellipse_box((t[0] - fw / 2, t[1] - fh / 2, t[0] + fw / 2, t[1] + fh / 2), angle)
    return _Geometry((nw, nh), matrix, (out_w, out_h), face, label)


def _place_face(
    canvas: np.ndarray,
    rng: np.random.Generator,
    hi_side: float,
    cut_fraction: float,
    max_rotation: float,
    taken: list[tuple[Box, Box]],
) -> Face | None:
    """Paste one head onto ``canvas`` (in place); return its face, or None if it does not fit."""
    height, width = canvas.shape[:2]
    cut = bool(rng.random() < cut_fraction) and hi_side > 2.0 * MIN_CUT_FACE
    lo = min(MIN_CUT_FACE if cut else MIN_FACE, hi_side)  # a cut face is large enough not to leave a sliver
    side = float(math.exp(rng.uniform(math.log(lo), math.log(max(lo, hi_side)))))
    names = [n for n in FACE_SOURCES if FACE_SOURCES[n][1] >= side] or ["hopper"]
    weights = np.array([FACE_SOURCES[n][0] for n in names])
    name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    heads = _heads()[name]
    head = heads[int(rng.integers(len(heads)))]
    flip = bool(rng.random() < 0.5)
    angle = float(rng.uniform(-max_rotation, max_rotation)) if max_rotation > 0 else 0.0
    tinted = _tint(head.patch, rng)
    light = (float(rng.uniform(0.0, 2.0 * math.pi)), float(rng.uniform(0.1, 0.6))) if rng.random() < 0.6 else None
    blur_sigma = float(rng.uniform(0.5, 1.6)) if rng.random() < 0.25 else 0.0  # scaled to the face size below

    for _shrink in range(6):
        geo = _geometry(head, side, flip, angle)
        sigma = blur_sigma * min(1.0, side / 48.0)  # the same blur would wipe out a 12 px face
        lx1, ly1, lx2, ly2 = geo.label
        fw, fh = lx2 - lx1, ly2 - ly1
        if fw < width - 1 and fh < height - 1:
            for _try in range(40):
                ox = int(rng.integers(int(math.ceil(-lx1)), int(math.floor(width - lx2)) + 1))
                oy = int(rng.integers(int(math.ceil(-ly1)), int(math.floor(height - ly2)) + 1))
                if cut:
                    edge = int(rng.integers(4))
                    visible = float(rng.uniform(MIN_VISIBLE, 0.92))
                    corner = rng.random() < 0.25
                    other = float(rng.uniform(0.6, 0.95))
                    axes = [(edge, visible)] + ([((edge + 1) % 4, other)] if corner else [])
                    for e, v in axes:  # 0: left, 1: top, 2: right, 3: bottom
                        if e == 0:
                            ox = int(round(-(1.0 - v) * fw - lx1))
                        elif e == 2:
                            ox = int(round(width - v * fw - lx1))
                        elif e == 1:
                            oy = int(round(-(1.0 - v) * fh - ly1))
                        else:
                            oy = int(round(height - v * fh - ly1))
                full = (lx1 + ox, ly1 + oy, lx2 + ox, ly2 + oy)
                box = clip_box(full, width, height)
                if box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0 or _area(box) < MIN_VISIBLE * _area(full):
                    continue
                patch_rect = clip_box(
                    (float(ox), float(oy), float(ox + geo.size[0]), float(oy + geo.size[1])), width, height
                )
                if any(
                    _inter(box, f) > MAX_COVER * min(_area(box), _area(f))
                    or _inter(patch_rect, f) > MAX_PATCH_COVER * _area(f)
                    for f, _ in taken
                ):
                    continue
                _paste(canvas, tinted, geo, flip, light, sigma, (ox, oy), head.oval)
                taken.append((box, patch_rect))
                return Face(box, full, name, angle, box != full)
        side *= 0.8
        if side < lo * 0.8:
            break
    return None


def _paste(
    canvas: np.ndarray,
    patch: np.ndarray,
    geo: _Geometry,
    flip: bool,
    light: tuple[float, float] | None,
    blur_sigma: float,
    offset: tuple[int, int],
    oval: bool,
) -> None:
    nw, nh = geo.scale
    box = geo.face
    interp = cv2.INTER_AREA if nw < patch.shape[1] else cv2.INTER_CUBIC
    img = cv2.resize(patch, (nw, nh), interpolation=interp)
    if flip:
        img = img[:, ::-1]
    img = np.ascontiguousarray(img).astype(np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if light is not None:  # light from one side: a linear gain ramp across the face
        direction, strength = light
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        size = max(box[2] - box[0], box[3] - box[1])
        xs = (np.arange(nw, dtype=np.float32) + 0.5 - cx) / size
        ys = (np.arange(nh, dtype=np.float32) + 0.5 - cy) / size
        ramp = math.cos(direction) * xs[None, :] + math.sin(direction) * ys[:, None]
        img = img * np.clip(1.0 + strength * ramp, 0.3, 1.7)[..., None]
    if blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_sigma)
        if img.ndim == 2:
            img = img[..., None]
    if oval:
        alpha = _oval_alpha((nh, nw), box)
    else:
        gx, gy = INNER_GROW * (box[2] - box[0]), INNER_GROW * (box[3] - box[1])
        inner = (max(0.0, box[0] - gx), max(0.0, box[1] - gy), min(float(nw), box[2] + gx), min(float(nh), box[3] + gy))
        alpha = _alpha((nh, nw), inner)
    if geo.matrix is not None:
        img = cv2.warpAffine(img, geo.matrix, geo.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(
            alpha, geo.matrix, geo.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
        )
        if img.ndim == 2:
            img = img[..., None]
    alpha = alpha[..., None]
    w, h = geo.size
    ox, oy = offset
    height, width = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(width, ox + w), min(height, oy + h)
    if x1 <= x0 or y1 <= y0:
        return
    src = img[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    a = alpha[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    dst = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = np.clip(dst * (1.0 - a) + src * a + 0.5, 0, 255).astype(np.uint8)


def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Whole-image brightness/contrast, colour cast, uneven light, and sometimes blur and sensor noise."""
    out = image.astype(np.float32)
    contrast, brightness = rng.uniform(0.75, 1.25), rng.uniform(-30.0, 30.0)
    cast = rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    mean = float(out.mean())
    out = out * (np.float32(contrast) * cast) + (np.float32(mean * (1.0 - contrast) + brightness) * cast)
    if rng.random() < 0.3:  # light falling off across the scene
        h, w = out.shape[:2]
        direction, strength = rng.uniform(0.0, 2.0 * math.pi), rng.uniform(0.15, 0.4)
        xs = (np.arange(w, dtype=np.float32) - w / 2) / max(w, h)
        ys = (np.arange(h, dtype=np.float32) - h / 2) / max(w, h)
        ramp = math.cos(direction) * xs[None, :] + math.sin(direction) * ys[:, None]
        out = out * (1.0 + 2.0 * strength * ramp)[..., None]
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.6, 1.4)))
    if rng.random() < 0.3:
        sigma = np.float32(rng.uniform(2.0, 6.0))
        out += rng.standard_normal(out.shape, dtype=np.float32) * sigma
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


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
    """Like :func:`generate`, and return each image's faces with how they were made (source, angle, cut)."""
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
        canvas = _background(rng, s.width, s.height)
        faces: list[Face] = []
        if i not in negatives:
            k = int(rng.integers(1, s.max_faces + 1))
            taken: list[tuple[Box, Box]] = []
            for _ in range(k):
                face = _place_face(canvas, rng, max_side / math.sqrt(k), s.cut_fraction, s.max_rotation, taken)
                if face is not None:
                    faces.append(face)
        image = _photometric(canvas, rng)
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
