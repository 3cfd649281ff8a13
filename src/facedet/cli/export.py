"""``facedet export``: export a model file to ONNX and check it against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model file to ONNX and check it against PyTorch",
        description="Write the ONNX graph images [B,3,H,W] -> faces [B,N,5] (decoded candidates; "
        "threshold and NMS stay in facedet) with the model's metadata, then compare "
        "ONNX Runtime with PyTorch on random inputs.",
    )
    p.add_argument(
        "--weights",
        type=Path,
        help="model file (default: the pipeline's, results/train/model.safetensors)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="ONNX file to write (default: the pipeline's, results/train/model.onnx; model.onnx outside a project)",
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet.inference.onnx import export_onnx
    from facedet.problems import DataError
    from facedet.stages import stage_folder

    train = stage_folder("train")
    if args.weights is None and train is None:
        raise DataError("no --weights given and no facedet project here")
    args.weights = args.weights or train / "model.safetensors"
    args.out = args.out or (train or Path(".")) / "model.onnx"
    try:
        diff = export_onnx(args.weights, args.out, opset=args.opset)
    except ValueError as err:
        raise DataError(str(err)) from None
    print(f"{args.out}: exported from {args.weights}; max abs difference ONNX Runtime vs PyTorch {diff:.3g}")
