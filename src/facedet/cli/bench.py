"""``facedet bench``: our models vs OpenCV Haar, YuNet and dlib: AP, speed, size, false positives."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from facedet.apps.peers import PEERS

    p = sub.add_parser(
        "bench",
        help="our models vs OpenCV Haar, YuNet and dlib: AP, speed, size, false positives",
        description="Benchmark model files against peer face detectors on the same images with the "
        "same thread count: AP@0.5 on a labelled set, median ms per 640x480 frame, "
        "parameters, size on disk, false positives on real non-face photos and faces "
        "found on real portraits shipped in packages. Writes OUT/bench.md and "
        "OUT/bench.json and logs an MLflow run (tag bench) when a store is configured. "
        "YuNet and dlib need the optional 'peers' extra; missing ones are skipped.",
    )
    p.add_argument(
        "--images",
        type=Path,
        help="a canonical COCO file or a LabelMe folder (default: the pipeline's test split, results/labels/test.json)",
    )
    p.add_argument(
        "--image-root",
        type=Path,
        help="folder the COCO file names are relative to (default: found beside the file, else results/collect/images)",
    )
    p.add_argument(
        "--weights",
        type=Path,
        nargs="+",
        action="extend",
        help="model files (.safetensors or .onnx; bundled: the model shipped with facedet), after one flag or "
        "several (default: results/train/model.safetensors if present)",
    )
    p.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        action="append",
        help="engine for our .safetensors models, repeatable (default: both torch and onnx, one row "
        "each; `facedet detect` runs onnx when the model's exported .onnx is beside it)",
    )
    p.add_argument(
        "--peers",
        nargs="*",
        default=list(PEERS),
        help="peer detectors besides Haar (always run): yunet, dlib (default: both, when installed)",
    )
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for every engine (default 2)")
    p.add_argument("--repeats", type=int, default=30, help="timed calls per detector after warm-up (default 30)")
    p.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder (default results/bench)")
    p.add_argument(
        "--mlflow",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log an MLflow run (default: when MLFLOW_TRACKING_URI is set or in a facedet project)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet.apps.bench import BenchSettings, run_bench

    report = run_bench(
        BenchSettings(
            images=args.images,
            image_root=args.image_root,
            weights=args.weights or [],
            backends=tuple(args.backend or BenchSettings.backends),
            peers=tuple(args.peers),
            threads=args.threads,
            repeats=args.repeats,
            out=args.out,
            mlflow=args.mlflow,
        )
    )
    print((args.out / "bench.md").read_text())
    run = f"; MLflow run {report['mlflow_run_id']}" if report.get("mlflow_run_id") else ""
    print(f"wrote {args.out / 'bench.md'} and {args.out / 'bench.json'}{run}")
