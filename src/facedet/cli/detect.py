"""``facedet detect``: detect faces in images, folders, globs, videos or a camera."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facedet.inference import DEFAULT_MAX_SIZE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="detect faces in images, folders, globs, videos or a camera",
        description="Detect faces; boxes are [x1, y1, x2, y2] in pixels of the original image. "
        "Video and camera boxes are smoothed over frames (see --no-smooth). "
        "Ctrl-C (or q in the window) stops early, keeping what was written. "
        "Each input that cannot be read is named on stderr ('facedet detect: FILE: problem') and "
        "skipped. Exit status: 0; 1 when no input could be read; 2 on an error that stops the run "
        "(no such source, an unusable model file).",
    )
    p.add_argument(
        "src",
        help="an image, a folder of images, a quoted glob ('photos/**/*.jpg'), a video file, or a camera index (0)",
    )
    p.add_argument(
        "--json",
        type=Path,
        help="write the detections as JSON ('-': to stdout): {images: [{file, width, height, "
        "faces: [{box, score, landmarks (five [x, y]; models with landmarks)}]}], errors, model: {file, mlflow_run_id, "
        'threshold, ...}}; video frames are "<video>#<i>"',
    )
    p.add_argument(
        "--csv",
        type=Path,
        help="write one row per face: file,frame,x1,y1,x2,y2,score,landmarks (five 'x y' joined by ';', empty "
        "for a model without landmarks)",
    )
    p.add_argument("--out", type=Path, help="folder for annotated images, or an annotated .mp4 for a video / camera")
    p.add_argument(
        "--weights",
        help="the model: a .safetensors file (torch, or onnx through its exported .onnx), "
        "an .onnx file (onnx), bundled (the model shipped with facedet), models:/facedet@champion "
        "(the registry's best by validation AP), models:/facedet/VERSION or runs:/RUN_ID from the "
        "project's MLflow store. Default: inside a project, the workspace's pipeline model "
        "results/train/model.safetensors (what the last `dvc repro`/`dvc exp run` "
        "trained; the row 'workspace' of `dvc exp show`), else the model bundled "
        "with facedet. The model used is printed and recorded in the JSON ('model')",
    )
    p.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        help="inference engine (default: onnx for an .onnx file or a .safetensors file with its exported "
        ".onnx beside it, as the bundled model and the pipeline's model after `dvc repro`; else torch)",
    )
    p.add_argument(
        "--threshold", type=float, help="minimum score (default: the model's, chosen on its validation split; printed)"
    )
    p.add_argument("--threads", type=int, help="intra-op threads for inference (default: the engine's)")
    p.add_argument(
        "--size",
        type=int,
        help="longest side in pixels pictures are scanned at, a multiple of 32 (default: the model's, "
        "printed; larger finds smaller faces and is slower)",
    )
    p.add_argument(
        "--max-size",
        type=int,
        default=DEFAULT_MAX_SIZE,
        help="pictures larger than --size are scanned again at 2x, 4x ... --size up to their own size or this "
        f"many pixels, for faces too small at the first scan (default {DEFAULT_MAX_SIZE}; 0: one scan); video and "
        "camera frames are scanned once",
    )
    p.add_argument("--no-smooth", action="store_true", help="no box smoothing over video frames")
    p.add_argument("--show", action="store_true", help="show a live window (needs an OpenCV build with GUI)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop a video or camera after N frames")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facedet.apps.detect import run_detect
    from facedet.inference.detector import FaceDetector
    from facedet.problems import DataError

    try:
        detector = FaceDetector.load(
            args.weights,
            backend=args.backend,
            threshold=args.threshold,
            threads=args.threads,
            size=args.size,
            max_size=args.max_size or None,
        )
    except ValueError as err:  # not a facedet model, MLflow URI, backend mismatch
        raise DataError(str(err)) from None
    print(f"facedet detect: {detector.describe()}", file=sys.stderr)
    results = run_detect(
        args.src,
        detector,
        json_out=args.json,
        csv_out=args.csv,
        out=args.out,
        smooth=not args.no_smooth,
        show=args.show,
        max_frames=args.max_frames,
    )
    for error in results.data["errors"]:  # one line each, with or without --json
        print(f"facedet detect: {error['file']}: {error['problem']}", file=sys.stderr)
    if args.json is None and args.csv is None and args.out is None and results.data["images"]:
        print(results.table())  # nothing asked to be written: the boxes on the console
    written = (
        ", ".join("stdout" if str(p) == "-" else str(p) for p in (args.json, args.csv, args.out) if p is not None)
        or "nothing written"
    )
    print(
        f"{written}: {results.faces} faces in {len(results.data['images'])} images/frames; "
        f"{len(results.data['errors'])} unreadable",
        file=sys.stderr if str(args.json) == "-" else sys.stdout,  # stdout is the JSON's alone
    )
    return 1 if results.data["errors"] and not results.data["images"] else 0  # nothing could be read
