"""``facedet prelabel``: propose face boxes as LabelMe files for the images that have none."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from facedet.apps.peers import PEERS

    p = sub.add_parser(
        "prelabel",
        help="propose face boxes as LabelMe files for the images that have none",
        description="For every image under DIR (recursive) without a LabelMe file, write one "
        "with the proposed face rectangles (into the sibling labels/ folder for the "
        "images/ + labels/ layout, else beside the image); existing files are never "
        "overwritten. Correct the proposals in labelme.",
    )
    p.add_argument("dir", type=Path, help="folder of images, e.g. data/images")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--weights", help="facedet model file (default: the pipeline's last model, else the bundled one)")
    who.add_argument(
        "--peer",
        choices=list(PEERS),
        help="use a peer detector instead of a model: OpenCV's frontal-face Haar cascade, YuNet "
        "or dlib's HOG detector (these two need the 'peers' extra)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        help="minimum score: the model's probability (default: the "
        "model's), the Haar level weight (default: none), or the "
        "YuNet/dlib score in [0, 1] (default 0.5)",
    )
    p.add_argument("--label", default="face", help="the shape label to write (default face)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet.apps.prelabel import model_proposer, peer_proposer, prelabel
    from facedet.inference.detector import default_weights
    from facedet.problems import DataError

    if args.peer:
        try:
            propose = peer_proposer(args.peer, threshold=args.threshold)
        except ValueError as err:  # the peer's package is not installed
            raise DataError(str(err)) from None
    else:
        weights = args.weights or default_weights()
        if not str(weights).startswith(("models:/", "runs:/")) and not Path(weights).is_file():
            raise FileNotFoundError(
                f"{weights}: no such model file (train one with `dvc repro`, give --weights, or use --peer haar)"
            )
        try:
            propose = model_proposer(weights, threshold=args.threshold)
        except ValueError as err:
            raise DataError(str(err)) from None
    summary = prelabel(args.dir, propose, label=args.label)
    for file, problem in summary.problems:
        print(f"  {file}: {problem}", file=sys.stderr)
    print(f"{args.dir}: {summary.line()}")
