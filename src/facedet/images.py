"""The one way pictures are found, read and written: by content, EXIF orientation applied, as RGB.

Reading is bounded, whatever the file holds: a file over `MAX_FILE_BYTES`, a picture over
`MAX_PIXELS` once decoded (a big JPEG is decoded at 1/2, 1/4 or 1/8 of its size, by the
JPEG decoder itself, to fit), a header that claims more than Pillow's bomb limit, more than
`MAX_METADATA_BYTES` of JPEG EXIF segments (Pillow joins them at a cost quadratic in their
number) and every decoder failure raise [`ImageError`][] naming the file. 16- and 32-bit
grayscale PNGs are scaled to 8 bits by their real range (not clipped, which makes them white).

Writing ([`write_image`][]) encodes in memory and writes the bytes through Python, so any file
name the file system takes works (``cv2.imwrite`` crashes on names that are not UTF-8).

Dataset folders are walked by [`dataset_files`][]: links to folders are not followed; a link to
a file is a file of the dataset only when it points inside the dataset folder or into a DVC cache
(``.dvc/cache`` of a folder above it); any other link is refused and never opened.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facedet.problems import DataError, excerpt

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_FILE_BYTES = 150_000_000  # a 100-megapixel JPEG is about 50 MB; a PNG of MAX_PIXELS about 150 MB
MAX_PIXELS = 50_000_000  # decoded, per picture: 150 MB as RGB
MAX_METADATA_BYTES = 1_000_000  # JPEG EXIF (APP1) bytes; EXIF fits one 64 KB segment by the standard
_JPEG_MAGIC, _PNG_MAGIC = b"\xff\xd8", b"\x89PNG\r\n\x1a\n"


class ImageError(DataError):
    """An image file cannot be used: ``str()`` is "FILE: problem"; ``problem`` alone, for reports."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{os.fsdecode(path)}: {problem}")
        self.path, self.problem = Path(path), problem


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- which files ------------------------------------------------------------------------------------


def link_allowed(path: Path, root: Path) -> bool:
    """Whether the file ``path`` of the dataset folder ``root`` may be opened: a plain file, or a link
    whose target (links resolved) is inside ``root`` or inside a ``.dvc/cache`` of a folder above it."""
    if not os.path.islink(path):
        return True
    try:
        real = os.path.realpath(path)
        allowed = [os.path.realpath(root)]
        allowed += [os.path.realpath(above / ".dvc" / "cache") for above in Path(os.path.abspath(root)).parents]
        return any(os.path.commonpath([real, a]) == a for a in allowed)
    except (OSError, ValueError):
        return False


def dataset_files(
    root: Path, suffixes: tuple[str, ...] | None = None, recursive: bool = True
) -> tuple[list[Path], list[Path]]:
    """(files, refused) under root, each sorted: files with one of ``suffixes`` (case-insensitive;
    None: any) that may be opened (dangling links included: opening one fails with a message), and links that lead
    out of the dataset (see [`link_allowed`][]). Links to folders are not walked."""
    root = Path(root)
    files, refused = [], []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        if not recursive:
            subfolders.clear()
        for name in names:
            path = Path(folder, name)
            if suffixes is not None and path.suffix.lower() not in suffixes:
                continue
            if not link_allowed(path, root):
                refused.append(path)
            elif path.is_file() or not path.exists():  # a dangling link stays, so its reader names it
                files.append(path)  # (FIFOs and sockets are left out: opening one could block)
    return sorted(files), sorted(refused)


def list_images(root: Path) -> list[Path]:
    """Image files under root (recursive, case-insensitive extensions, see [`dataset_files`][]), sorted."""
    return dataset_files(root, IMAGE_EXTENSIONS)[0]


# --- reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """A decoded picture: ``rgb`` HxWx3 uint8, and the full size after EXIF orientation (``rgb`` is
    smaller when a big JPEG was decoded at a reduced scale)."""

    rgb: np.ndarray
    width: int
    height: int


def read_rgb(path: Path, max_side: int | None = None) -> np.ndarray:
    """HxWx3 uint8 RGB with EXIF orientation applied (see [`read_picture`][])."""
    return read_picture(path, max_side).rgb


def read_picture(path: Path, max_side: int | None = None) -> Picture:
    """The picture of an image file; ImageError (naming the file) for anything unusable.

    ``max_side``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale as long as its longest side stays
    at least ``max_side`` (cheap: the decoder skips the detail). A JPEG over `MAX_PIXELS` is
    always decoded at the largest scale that fits.
    """
    with _opened(Path(path)) as image:
        width, height = image.size
        scale = _scale(path, image, max_side)
        if scale > 1:  # the decoder picks the smallest of 1/2, 1/4, 1/8 that is at least this size
            image.draft(image.mode, (max(1, width // scale), max(1, height // scale)))
        image.load()
        orientation = _orientation(image)
        rgb = np.asarray(_to_rgb(ImageOps.exif_transpose(image)))
    return Picture(rgb, *((height, width) if orientation >= 5 else (width, height)))


def read_header(path: Path) -> tuple[int, int, int]:
    """(width, height, EXIF orientation) from the header, after orientation (pixels not decoded);
    ImageError for what [`read_picture`][] would refuse before decoding."""
    with _opened(Path(path)) as image:
        _scale(path, image, None)
        width, height = image.size
        orientation = _orientation(image)
    return (height, width, orientation) if orientation >= 5 else (width, height, orientation)


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """The opened (not decoded) image; every failure, here or in the body, as ImageError."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise ImageError(path, "empty file (0 bytes)")
        if size > MAX_FILE_BYTES:
            raise ImageError(path, f"file too large ({size} bytes; the limit is {MAX_FILE_BYTES})")
        with open(path, "rb") as handle:
            _check_metadata(path, handle)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit follows
                with Image.open(handle) as image:
                    yield image
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        claimed = next((word.strip("(") for word in str(err).split() if word.strip("(").isdigit()), "?")
        raise ImageError(
            path, f"too many pixels ({claimed} in its header; the limit is {MAX_PIXELS}: a decompression bomb?)"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(path, "not an image (unrecognised content)") from None
    except MemoryError:
        raise ImageError(path, "not enough memory to decode it") from None
    except OSError as err:
        if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise ImageError(path, f"cannot read ({err.strerror})") from None
        raise ImageError(path, f"corrupt or truncated image ({excerpt(err, 80)})") from None
    except Exception as err:  # noqa: BLE001 - any decoder failure means the same: unusable
        raise ImageError(path, f"corrupt image ({type(err).__name__}: {excerpt(err, 80)})") from None


def _scale(path: Path, image: Image.Image, max_side: int | None) -> int:
    """1, 2, 4 or 8: how much smaller than its size the picture is decoded; ImageError when even
    that is over `MAX_PIXELS` (only JPEGs decode at a reduced scale)."""
    width, height = image.size
    scale = 1
    if image.format == "JPEG":
        while scale < 8 and (
            width * height / scale**2 > MAX_PIXELS
            or (max_side is not None and max(width, height) / (2 * scale) >= max_side)
        ):
            scale *= 2
    if width * height / scale**2 > MAX_PIXELS:
        raise ImageError(path, f"too many pixels ({width}x{height}; the limit is {MAX_PIXELS} decoded pixels)")
    return scale


def _check_metadata(path: Path, handle) -> None:
    """Refuse a JPEG with more EXIF bytes than `MAX_METADATA_BYTES` (before Pillow joins them)."""
    if handle.read(2) != _JPEG_MAGIC:
        handle.seek(0)
        return
    exif = 0
    while True:
        marker = handle.read(4)
        if len(marker) < 4 or marker[0] != 0xFF or marker[1] in (0xDA, 0xD9):  # start of scan / end
            break
        length = int.from_bytes(marker[2:], "big")
        if marker[1] == 0xE1:
            exif += length
            if exif > MAX_METADATA_BYTES:
                raise ImageError(
                    path, f"too much EXIF metadata (over {MAX_METADATA_BYTES} bytes in APP1 segments; an EXIF bomb?)"
                )
        handle.seek(length - 2, os.SEEK_CUR)
    handle.seek(0)


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block: the pixels are still usable
        return 1


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB; 16-bit grayscale (modes ``I;16*``) scaled from 0..65535 to 0..255; 32-bit modes I and F by the
    smallest of 8, 16 or 32 bits (F: also [0, 1]) that holds their largest value."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image).astype(np.float64)
        top = float(values.max()) if values.size else 0.0
        if image.mode.startswith("I;16"):
            full = 65535.0
        elif image.mode == "F" and top <= 1.0:
            full = 1.0  # floating-point pictures in [0, 1]
        else:
            full = 255.0 if top <= 255 else 65535.0 if top <= 65535 else 4294967295.0
        gray = np.clip(values / full * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    return image.convert("RGB")


# --- writing ----------------------------------------------------------------------------------------


def write_image(path: Path, rgb: np.ndarray, quality: int = 95, bgr: bool = False) -> None:
    """Write HxWx3 RGB (``bgr``: already in OpenCV's BGR order; or HxW gray) as the file's extension
    says (JPEG at ``quality``), whatever the file name.

    OSError when the file cannot be written; ValueError for an extension OpenCV cannot encode.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 and not bgr else rgb
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if suffix in (".jpg", ".jpeg") else []
    try:
        ok, encoded = cv2.imencode(suffix or ".png", pixels, params)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"{os.fsdecode(path)}: cannot encode a picture as '{suffix}'")
    path.write_bytes(encoded.tobytes())
