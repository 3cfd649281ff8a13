"""Peer face detectors that install offline with their weights, behind one interface.

Each peer is a callable ``rgb (HxWx3 uint8) -> list[Detection]`` returning every candidate it has a
score for (best first, scores mapped monotonically into [0, 1]) so that AP can rank them, and a
``threshold``: the score from which a box counts as a detection at the library's own default (for
precision / recall and false-positive counts).

- ``haar``: OpenCV's Viola-Jones cascade ``haarcascade_frontalface_default.xml`` (opencv 4.x ships it),
  ``detectMultiScale3`` on the histogram-equalised grey picture (scaleFactor 1.1, minNeighbors 5,
  minSize 30x30, as in OpenCV's samples); score = logistic(level weight of the last stage). Every
  returned box counts (threshold 0).
- ``yunet``: libfacedetection's YuNet through the ``yuface`` package (weights compiled into the
  library); BGR input; score = confidence / 100; threshold 0.5 (``yuface.detect``'s default); five
  landmarks per face (in whole pixels), in facedet's order.
- ``dlib``: dlib's HOG + linear SVM frontal face detector (``dlib-bin``), ``run(rgb, 1, -1)``: one
  upsampling, candidates down to SVM score -1; score = logistic(SVM score); threshold 0.5 (score 0,
  dlib's default).

Peers are optional (``pip install 'facedet[peers]'``) except Haar; `missing` says why a peer
cannot run instead of raising.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facedet.coco import Detection

# name -> the Python module it needs and the pip package that provides it
PEERS: dict[str, tuple[str, str]] = {
    "haar": ("cv2", "opencv-python-headless"),
    "yunet": ("yuface", "yuface"),
    "dlib": ("dlib", "dlib-bin"),
}

HAAR_FILE = "haarcascade_frontalface_default.xml"
HAAR_SETTINGS = {"scaleFactor": 1.1, "minNeighbors": 5, "minSize": (30, 30)}
YUNET_PARAMS = 75_856  # the YuNet paper (Wu, Peng, Yu, Machine Intelligence Research 2023)


def _logistic(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-float(value)))


@dataclass
class Peer:
    """A loaded peer detector. ``params``/``size_bytes`` are None where unknown; notes say why."""

    name: str
    detect: Callable[[np.ndarray], list[Detection]]
    threshold: float
    source: str
    params: int | None = None
    params_note: str = ""
    size_bytes: int | None = None
    size_note: str = ""
    notes: list[str] = field(default_factory=list)

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        return self.detect(rgb)


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{distribution}=={version(distribution)}"
    except PackageNotFoundError:
        return distribution


def missing(name: str) -> str | None:
    """Why peer ``name`` cannot run here (unknown name, package not installed), or None."""
    if name not in PEERS:
        return f"unknown peer {name!r} (known: {', '.join(PEERS)})"
    module, package = PEERS[name]
    if importlib.util.find_spec(module) is None:
        return f"skipped: module '{module}' not installed (pip install {package}, or the 'peers' extra)"
    return None


def _sorted(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: -d.score)


def haar(threads: int | None = None) -> Peer:
    import cv2  # here: the registry above is read by the command's parser, which need not load OpenCV

    path = Path(cv2.data.haarcascades) / HAAR_FILE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"{path}: OpenCV could not load the Haar cascade")
    if threads:
        cv2.setNumThreads(threads)  # process-wide, as for PyTorch

    def detect(rgb: np.ndarray) -> list[Detection]:
        grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        boxes, _, weights = cascade.detectMultiScale3(grey, **HAAR_SETTINGS, outputRejectLevels=True)
        return _sorted(
            [
                Detection((float(x), float(y), float(x + w), float(y + h)), _logistic(score))
                for (x, y, w, h), score in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights))
            ]
        )

    stumps = sum(1 for line in path.read_text().splitlines() if "<internalNodes>" in line)
    return Peer(
        "haar",
        detect,
        0.0,
        f"{_version('opencv-python-headless')} {HAAR_FILE}",
        params_note=f"n/a ({stumps} decision stumps)",
        size_bytes=path.stat().st_size,
        size_note="cascade XML",
    )


def _omp_set_threads(package_dir: Path, threads: int) -> bool:
    """Set the thread count of the OpenMP runtime bundled with a wheel (auditwheel's ``<pkg>.libs``)."""
    for lib in sorted((package_dir.parent / f"{package_dir.name}.libs").glob("libgomp*.so*")):
        try:
            ctypes.CDLL(str(lib)).omp_set_num_threads(int(threads))
            return True
        except (OSError, AttributeError):
            continue
    return False


def yunet(threads: int | None = None) -> Peer:
    import yuface

    package = Path(yuface.__file__).parent
    notes = []
    if threads and not _omp_set_threads(package, threads):
        notes.append("thread count not set (no bundled OpenMP runtime found)")

    def detect(rgb: np.ndarray) -> list[Detection]:
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        rows = np.asarray(yuface.c_detect(bgr))  # [N, 16]: confidence 0..100, x, y, w, h, 5 landmarks, ...
        out = []
        for row in rows.reshape(-1, rows.shape[-1]) if rows.size else ():
            conf, x, y, w, h = (float(v) for v in row[:5])
            # YuNet's points are facedet's order (image-left eye first; checked on yuface 2023.5.1), whole pixels.
            points = tuple((float(row[5 + 2 * k]), float(row[6 + 2 * k])) for k in range(5))
            out.append(Detection((x, y, x + w, y + h), conf / 100.0, points))
        return _sorted(out)

    library = sorted(package.glob("libfacedetection.so*"))
    return Peer(
        "yunet",
        detect,
        0.5,
        _version("yuface") + " (libfacedetection)",
        params=YUNET_PARAMS,
        params_note="published (YuNet paper)",
        size_bytes=library[0].stat().st_size if library else None,
        size_note="libfacedetection.so, weights + code",
        notes=notes,
    )


def dlib_hog(threads: int | None = None) -> Peer:
    import dlib

    detector = dlib.get_frontal_face_detector()

    def detect(rgb: np.ndarray) -> list[Detection]:
        rects, scores, _ = detector.run(np.ascontiguousarray(rgb), 1, -1)
        return _sorted(
            [
                Detection((float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1)), _logistic(s))
                for r, s in zip(rects, scores)
            ]
        )

    notes = ["single-threaded (dlib's HOG detector has no thread setting)"] if threads and threads > 1 else []
    return Peer(
        "dlib",
        detect,
        0.5,
        _version("dlib-bin") + " HOG frontal",
        params_note="n/a (5 HOG filters)",
        size_note="n/a (built into dlib)",
        notes=notes,
    )


FACTORIES: dict[str, Callable[[int | None], Peer]] = {"haar": haar, "yunet": yunet, "dlib": dlib_hog}


def load(name: str, threads: int | None = None) -> Peer:
    """The peer ``name``; ValueError if it cannot run here (see `missing`)."""
    problem = missing(name)
    if problem:
        raise ValueError(f"{name}: {problem}")
    return FACTORIES[name](threads)
