"""Frames per second of a facedet model on a 640x480 video, per engine, batch size and thread count.

    .venv/bin/python experiments/bench_inference.py                       # the pipeline's model
    .venv/bin/python experiments/bench_inference.py --weights m.safetensors --video clip.mp4

The video (default: one made here with cv2.VideoWriter from real pictures shipped in scikit-image and
matplotlib, the camera panning over each) is decoded into memory first, so the numbers are detection
only: ``FaceDetector.detect_batch`` (resize, network, NMS, boxes back to pixels) on ``--frames``
frames in batches of B; FPS is the median over ``--repeats`` passes after one warm-up batch. Torch,
OpenCV and ONNX Runtime get the same intra-op thread count. The target is >= 60 FPS with ONNX
Runtime for the default model on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from facedet.inference.detector import FaceDetector, default_weights  # noqa: E402

WIDTH, HEIGHT = 640, 480
TARGET_FPS = 60.0


def _sources() -> list[np.ndarray]:
    import matplotlib.cbook
    import skimage.data

    from facedet.images import read_rgb

    hopper = read_rgb(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return [
        skimage.data.astronaut(),
        hopper,
        skimage.data.chelsea(),
        skimage.data.coffee(),
        skimage.data.stereo_motorcycle()[0],
    ]


def make_video(path: Path, frames_per_picture: int = 16, fps: float = 25.0) -> Path:
    """A 640x480 mp4 in which the camera slowly zooms and pans over each real picture."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write mp4v video here")
    for picture in _sources():
        h, w = picture.shape[:2]
        for i in range(frames_per_picture):
            t = i / max(1, frames_per_picture - 1)
            crop = 1.0 - 0.2 * t  # zoom in by 20 % over the shot
            cw, ch = int(w * crop), int(h * crop)
            x0, y0 = int((w - cw) * t), int((h - ch) * 0.5 * t)
            frame = cv2.resize(picture[y0 : y0 + ch, x0 : x0 + cw], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_video(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """RGB frames, resized to 640x480 where the video has another size."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while limit is None or len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        if frame.shape[:2] != (HEIGHT, WIDTH):
            frame = cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise RuntimeError(f"{path}: no frame could be decoded")
    return frames


def fps(detector: FaceDetector, frames: list[np.ndarray], batch: int, count: int, repeats: int) -> tuple[float, float]:
    """Median frames per second of detect_batch over ``count`` frames (cycling the video) in batches,
    and the median process CPU milliseconds per frame (summed over threads; steadier when shared)."""
    detector.detect_batch(frames[:batch])  # warm-up
    order = [frames[i % len(frames)] for i in range(count)]
    rates, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for i in range(0, count, batch):
            detector.detect_batch(order[i : i + batch])
        rates.append(count / (time.perf_counter() - start))
        cpu.append((time.process_time() - start_cpu) * 1000.0 / count)
    return statistics.median(rates), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--weights",
        type=Path,
        default=default_weights(),
        help="model file (.safetensors; default: the pipeline's last model, else the bundled one)",
    )
    ap.add_argument("--video", type=Path, help="a video file (default: made here from real pictures)")
    ap.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--frames", type=int, default=64, help="frames per timed pass (default 64)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes; the median counts (default 3)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    if not args.weights.is_file():
        print(f"{args.weights}: no such model file (run the pipeline or give --weights)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="facedet-video-") as tmp:
        video = args.video or make_video(Path(tmp) / "frames.mp4")
        start = time.perf_counter()
        frames = read_video(video)
        decode_fps = len(frames) / (time.perf_counter() - start)

    rows = []
    for backend in args.backends:
        for threads in args.threads:
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
            detector = FaceDetector.load(args.weights, backend=backend, threads=threads)
            for batch in args.batch:
                rate, cpu_ms = fps(detector, frames, batch, args.frames, args.repeats)
                rows.append(
                    {
                        "backend": backend,
                        "threads": threads,
                        "batch": batch,
                        "fps": round(rate, 1),
                        "ms_per_frame": round(1000.0 / rate, 2),
                        "cpu_ms_per_frame": round(cpu_ms, 2),
                    }
                )
                print(f"  {backend:5s} threads={threads} batch={batch}: {rate:7.1f} FPS", file=sys.stderr, flush=True)

    name = args.weights.name
    print(
        f"\n{name}: {len(frames)} frames of {WIDTH}x{HEIGHT} from {args.video or 'a generated mp4'} "
        f"(decoding alone: {decode_fps:.0f} FPS); median of {args.repeats} passes of {args.frames} frames; "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| backend | threads | batch | FPS | ms/frame | CPU ms/frame | >= 60 FPS |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['backend']} | {row['threads']} | {row['batch']} | {row['fps']} | {row['ms_per_frame']} | "
            f"{row['cpu_ms_per_frame']} | {'yes' if row['fps'] >= TARGET_FPS else 'no'} |"
        )
    best = max((r for r in rows if r["backend"] == "onnx"), key=lambda r: r["fps"], default=None)
    if best is not None:
        verdict = "meets" if best["fps"] >= TARGET_FPS else "misses"
        print(
            f"\nONNX Runtime best: {best['fps']} FPS (threads={best['threads']}, batch={best['batch']}): "
            f"{verdict} the {TARGET_FPS:.0f} FPS target"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"weights": str(args.weights), "frames": len(frames), "decode_fps": round(decode_fps, 1), "rows": rows},
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
