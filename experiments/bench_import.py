"""How fast the collect and labels stages take in a big folder, and how much memory they need.

Generates N small but real JPEGs (160x120, each different) in the images/ + labels/ layout, most
with a LabelMe file (like the seed's), plus a few duplicates and broken files, then runs the
collect stage and the labels stage (LabelMe import, rescale, split) each in a fresh process and
prints images per second (wall clock, and per CPU second: on a shared machine the wall clock
depends on the neighbours) and the peak resident memory of that process (ru_maxrss; the Python +
imports baseline is printed too).

    .venv/bin/python experiments/bench_import.py                 # 10,000 images in a temp folder
    .venv/bin/python experiments/bench_import.py --images 2000 --keep /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generate(data: Path, n: int, labelled: float = 0.9, seed: int = 0) -> dict:
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    images, labels = data / "images", data / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    ramp = np.linspace(0, 1, 160, dtype=np.float32)[None, :, None]
    faces = 0
    for i in range(n):
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        picture = (a * (1 - ramp) + b * ramp).astype(np.uint8).repeat(120, axis=0)
        w, h = int(rng.integers(24, 60)), int(rng.integers(30, 70))
        x, y = int(rng.integers(0, 160 - w)), int(rng.integers(0, 120 - h))
        cv2.ellipse(
            picture,
            (x + w // 2, y + h // 2),
            (w // 2, h // 2),
            0,
            0,
            360,
            tuple(int(v) for v in rng.integers(0, 256, 3)),
            -1,
        )
        cv2.putText(picture, str(i), (4, 114), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        name = f"img_{i:05d}"
        cv2.imwrite(str(images / f"{name}.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if rng.random() < labelled:
            faces += 1
            shape = {
                "label": "face",
                "points": [[x, y], [x + w, y + h]],
                "group_id": None,
                "description": "",
                "shape_type": "rectangle",
                "flags": {},
                "mask": None,
            }
            (labels / f"{name}.json").write_text(
                json.dumps(
                    {
                        "version": "5.4.1",
                        "flags": {},
                        "shapes": [shape],
                        "imagePath": f"..\\images\\{name}.jpg",
                        "imageData": None,
                        "imageHeight": 120,
                        "imageWidth": 160,
                    }
                )
            )
    # A few of the usual problems: they are reported, the rest goes through.
    for i in range(5):
        shutil.copy(images / f"img_{i:05d}.jpg", images / f"copy_{i}.jpg")
    (images / "empty.jpg").write_bytes(b"")
    (images / "text.jpg").write_text("not an image")
    return {"images": n, "faces": faces, "bytes": sum(p.stat().st_size for p in images.iterdir())}


def child(stage: str, data: str, results: str) -> None:
    """Run one stage in this process; print seconds and peak memory as JSON."""
    import logging

    from facedet.config import compose_config
    from facedet.pipeline import collect, labels

    logging.basicConfig(level=logging.WARNING)
    cfg = compose_config(
        [f"paths.data={data}", f"paths.collect={results}/collect", f"paths.labels={results}/labels"], root=ROOT
    )
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu = time.process_time()
    started = time.perf_counter()
    (collect if stage == "collect" else labels).run(cfg)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "baseline_mb": baseline / 1024, "peak_mb": peak / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="work in this folder (kept) instead of a temp folder")
    parser.add_argument("--child", nargs=3, metavar=("STAGE", "DATA", "RESULTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_import_"))
    try:
        if work.exists() and args.keep:
            shutil.rmtree(work)
        started = time.perf_counter()
        made = generate(work / "data", args.images)
        print(
            f"generated {made['images']} images ({made['bytes'] / 2**20:.0f} MiB, {made['faces']} with a "
            f"LabelMe file) + 5 duplicates + 2 broken in {time.perf_counter() - started:.1f} s"
        )
        for stage in ("collect", "labels"):
            done = subprocess.run(
                [sys.executable, __file__, "--child", stage, str(work / "data"), str(work / "results")],
                capture_output=True,
                text=True,
            )
            if done.returncode:
                sys.exit(f"{stage} failed:\n{done.stderr[-3000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            report = json.loads((work / "results" / stage / "report.json").read_text())["summary"]
            print(
                f"{stage:8s} {figures['seconds']:6.1f} s  {report['images'] / figures['seconds']:6.0f} images/s "
                f"({report['images'] / figures['cpu_seconds']:.0f} per CPU second)  "
                f"peak RSS {figures['peak_mb']:5.0f} MiB (after imports {figures['baseline_mb']:.0f} MiB)  "
                f"report: {json.dumps(report)}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
