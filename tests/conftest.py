import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SEED_WEBCAM = ROOT.parent / "shared" / "seed-webcam"


@pytest.fixture
def seed_webcam() -> Path:
    """The seed project's real labelme data (never copied into the repo); skip when absent."""
    if not (SEED_WEBCAM / "images").is_dir():
        pytest.skip(f"{SEED_WEBCAM} is not here")
    return SEED_WEBCAM
