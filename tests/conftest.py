import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SEED_WEBCAM = ROOT.parent / "shared" / "seed-webcam"


@pytest.fixture
def seed_webcam() -> Path:
    """The seed project's real labelme data (never copied into the repo); skip when absent."""
    if not (SEED_WEBCAM / "images").is_dir():
        pytest.skip(f"{SEED_WEBCAM} is not here")
    return SEED_WEBCAM


def _iou(a, b) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_same_faces(first: list[dict], second: list[dict], threshold: float, score_tol: float = 1e-3) -> None:
    """Two detectors' faces in one picture (``{"box": [x1, y1, x2, y2], "score": s}`` each, as
    ``facedet detect --json`` writes them) are the same up to the rounding of another engine or CPU:
    every face scored clearly above ``threshold`` in one is in the other, at IoU >= 0.99 and a score
    within ``score_tol``. A face within ``score_tol`` of the threshold may be in one list only."""
    for these, those in ((first, second), (second, first)):
        for face in these:
            if face["score"] < threshold + score_tol:
                continue
            best = max(those, key=lambda other: _iou(face["box"], other["box"]), default=None)
            assert best is not None and _iou(face["box"], best["box"]) >= 0.99, (face, those)
            assert abs(best["score"] - face["score"]) <= score_tol, (face, best)
