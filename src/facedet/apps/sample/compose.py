"""One scene: heads scaled, flipped, tinted, lit, blurred, rotated and pasted onto a background, with
their labels carried through the same geometry."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facedet.apps.sample.pictures import FACE_SOURCES, Head, heads
from facedet.boxes import Box, clip_box, ellipse_box

MIN_FACE = 12.0  # smallest face side in px
MAX_FACE_FRACTION = 0.85  # largest face side, as a share of the shorter image side (one-face images)
MIN_CUT_FACE = 24.0  # faces cut by the image border are drawn from this size up
MIN_VISIBLE = 0.45  # a cut face keeps at least this share of its (label) box inside the image
MAX_COVER = 0.10  # a face box may cover at most this share of another face box
MAX_PATCH_COVER = 0.25  # a later head patch may cover at most this share of an earlier face box
INNER_GROW = 0.08  # fully opaque core = face box grown by this share; feathered out to the patch edge
OVAL_GROW, OVAL_FADE = 1.12, 1.4  # oval mask: opaque up to 1.12x the face box's inscribed ellipse, 0 at 1.4x

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
class Face:
    """One pasted face: its label (the visible box, clipped to the image) and how it was made."""

    box: Box  # the label, as written to the LabelMe file (before rounding to 0.01 px)
    full_box: Box  # the label box before clipping to the image (== box unless cut)
    source: str  # key of FACE_SOURCES
    angle: float  # in-plane rotation, degrees
    cut: bool  # placed partly outside the image on purpose


def inscribed_ellipse_box(box: Box, angle: float) -> Box:
    """Axis-aligned box of the ellipse inscribed in ``box`` after rotating it by ``angle`` degrees about its centre."""
    x1, y1, x2, y2 = box
    return ellipse_box((x1 + x2) / 2.0, (y1 + y2) / 2.0, (x2 - x1) / 2.0, (y2 - y1) / 2.0, math.radians(angle))


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
class Geometry:
    """A head scaled to one face size, flipped and rotated: where its pixels and its label go."""

    scale: tuple[int, int]  # (nw, nh): the size the head patch is resized to
    matrix: np.ndarray | None  # 2x3 cv2.warpAffine matrix (pixel-centre coordinates), None: no rotation
    size: tuple[int, int]  # (w, h) of the rotated patch
    face: Box  # the face box in the resized, flipped, unrotated patch
    label: Box  # the label box in the rotated patch


def geometry(head: Head, side: float, flip: bool, angle: float) -> Geometry:
    bx1, by1, bx2, by2 = head.box
    ph, pw = head.patch.shape[:2]
    scale = side / max(bx2 - bx1, by2 - by1)
    nw, nh = max(2, int(round(pw * scale))), max(2, int(round(ph * scale)))
    sx, sy = nw / pw, nh / ph  # exact scale cv2.resize applies (edge coordinates)
    face = (bx1 * sx, by1 * sy, bx2 * sx, by2 * sy)
    if flip:
        face = (nw - face[2], face[1], nw - face[0], face[3])
    if angle == 0.0:
        return Geometry((nw, nh), None, (nw, nh), face, face)
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
    return Geometry((nw, nh), matrix, (out_w, out_h), face, label)


def place_face(
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
    choices = heads()[name]
    head = choices[int(rng.integers(len(choices)))]
    flip = bool(rng.random() < 0.5)
    angle = float(rng.uniform(-max_rotation, max_rotation)) if max_rotation > 0 else 0.0
    tinted = _tint(head.patch, rng)
    light = (float(rng.uniform(0.0, 2.0 * math.pi)), float(rng.uniform(0.1, 0.6))) if rng.random() < 0.6 else None
    blur_sigma = float(rng.uniform(0.5, 1.6)) if rng.random() < 0.25 else 0.0  # scaled to the face size below

    for _shrink in range(6):
        geo = geometry(head, side, flip, angle)
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
    geo: Geometry,
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


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
