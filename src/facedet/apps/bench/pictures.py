"""The pictures a bench measures on: the labelled set, real non-face pictures, real portraits."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from facedet import coco
from facedet.apps import peers
from facedet.coco import Image
from facedet.images import read_rgb
from facedet.stages import stage_folder

FRAME = (640, 480)
DEFAULT_PEERS = tuple(peers.PEERS)


# --- the fixed real pictures --------------------------------------------------------------------

MAX_PHOTO_SIDE = 640  # the fixed photos are shrunk to this longest side, like a camera frame


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    scale = MAX_PHOTO_SIDE / max(image.shape[:2])
    if scale < 1:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return _rgb(image[0] if isinstance(image, tuple) else image)

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return _rgb(load_sample_image(name))

    return load


def _hopper() -> np.ndarray:
    import matplotlib.cbook

    return read_rgb(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


# Non-face photos: (name, loader, used as a sample background). Animals, a building, food, space,
# textures, documents; the last five never appear in the embedded sample.
NON_FACE: tuple[tuple[str, Callable[[], np.ndarray], bool], ...] = (
    ("sklearn china.jpg", _sklearn("china.jpg"), True),
    ("sklearn flower.jpg", _sklearn("flower.jpg"), True),
    *(
        (f"skimage {n}", _skimage(n), True)
        for n in (
            "chelsea",
            "coffee",
            "rocket",
            "hubble_deep_field",
            "brick",
            "coins",
            "grass",
            "gravel",
            "moon",
            "page",
            "clock",
            "text",
        )
    ),
    *(
        (f"skimage {n}", _skimage(n), False)
        for n in ("stereo_motorcycle", "immunohistochemistry", "retina", "horse", "logo")
    ),
)


@lru_cache(maxsize=1)
def non_face_pictures() -> tuple[tuple[str, np.ndarray, bool], ...]:
    return tuple((name, load(), seen) for name, load, seen in NON_FACE)


@lru_cache(maxsize=1)
def portrait_pictures() -> tuple[tuple[str, np.ndarray, Image], ...]:
    """Real face photos shipped in packages, with hand-drawn face boxes (see facedet.apps.sample)."""
    from facedet.apps.sample import ASTRONAUT_FACE, CAMERA_FACE, HOPPER_FACE

    out = []
    for name, load, box in (
        ("skimage astronaut", _skimage("astronaut"), ASTRONAUT_FACE),
        ("matplotlib grace_hopper.jpg", _hopper, HOPPER_FACE),
        ("skimage camera (profile)", _skimage("camera"), CAMERA_FACE),
    ):
        image = load()
        out.append((name, image, Image(name, image.shape[1], image.shape[0], [box])))
    return tuple(out)


# --- the labelled set ---------------------------------------------------------------------------


def load_truth(images: Path | None = None, image_root: Path | None = None) -> tuple[list[Image], list[np.ndarray], str]:
    """The labelled set: a canonical COCO file (images under ``image_root``, default: beside it in
    ``images/``, beside it, or the pipeline's ``results/collect/images``) or a LabelMe folder (images
    without a JSON are negatives). Returns the ground truth, the RGB pictures and a description."""
    labels, collected = stage_folder("labels"), stage_folder("collect")
    if images is None and labels is None:
        raise FileNotFoundError("no --images given and no facedet project here (with its test split)")
    spec = Path(images) if images is not None else labels / "test.json"
    if spec.is_dir():
        from facedet.label_formats.labelme import import_folder
        from facedet.problems import ProblemReport

        truth = import_folder(spec, ProblemReport("bench"))
        root = spec
    elif spec.is_file():
        truth = coco.read(spec)
        candidates = (
            [image_root]
            if image_root
            else [
                spec.parent / "images",
                spec.parent,
                *([collected / "images"] if collected else []),
                spec.parent.parent / "collect" / "images",
            ]
        )
        root = next((c for c in candidates if truth and (Path(c) / truth[0].file_name).is_file()), candidates[0])
    else:
        raise FileNotFoundError(f"{spec}: no such COCO file or LabelMe folder (run the pipeline, or give --images)")
    if not truth:
        raise FileNotFoundError(f"{spec}: no images")
    pictures = [read_rgb(Path(root) / image.file_name) for image in truth]
    return truth, pictures, f"{spec} (images in {root})" if spec.is_file() else str(spec)
