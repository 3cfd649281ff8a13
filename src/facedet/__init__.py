"""facedet: train your own face detector from scratch in a reproducible pipeline."""

__version__ = "0.1.0"
