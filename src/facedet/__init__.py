"""facedet: train your own face detector from scratch in a reproducible pipeline."""

from __future__ import annotations

import os

# albumentations looks for a newer release online when it is imported, unless this is set; every way
# into facedet (the command, DVC's stage commands, the Python API, the tests) imports this package
# first, so this is the one place that sets it.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
__all__ = ["FaceDetector", "__version__"]

# Loaded on first use, so `import facedet` stays light (no torch, no OpenCV).
_LAZY = {"FaceDetector": "facedet.inference.detector"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'facedet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
