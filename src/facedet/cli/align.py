"""``facedet align``: aligned face crops (ArcFace's five-point template) for face recognition."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="aligned face crops (ArcFace's five-point template) for face recognition",
        description="Find the faces in pictures and write each one warped by a similarity transform of "
        "its five landmarks onto ArcFace's 112x112 template (what face-recognition models expect), as "
        "OUT/<picture>_<k>.png, k = 0 for the best face. Needs a model with landmarks.",
    )
    p.add_argument("src", help="a picture, a folder of pictures or a glob")
    p.add_argument("--out", type=Path, required=True, help="folder for the crops")
    p.add_argument("--size", type=int, default=112, help="side of the square crops in pixels (template scaled)")
    p.add_argument("--weights", help="the model (a .safetensors or .onnx file with landmarks; default as detect's)")
    p.add_argument("--threshold", type=float, help="minimum face score (default: the model's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facedet.apps.align import write_aligned
    from facedet.inference.detector import FaceDetector
    from facedet.problems import DataError

    try:
        detector = FaceDetector.load(args.weights, threshold=args.threshold)
        written, errors = write_aligned(detector, args.src, args.out, args.size)
    except ValueError as err:  # a model without landmarks, a video, not a facedet model
        raise DataError(str(err)) from None
    for error in errors:
        print(f"facedet align: {error}", file=sys.stderr)
    print(f"{args.out}: {written} aligned {args.size}x{args.size} faces; {len(errors)} pictures unreadable")
    return 0
