"""``facedet sample``: write the embedded sample dataset (images + LabelMe files)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="write the embedded sample dataset (images + LabelMe files)",
        description="Write a deterministic dataset of real faces (from pictures that ship in "
        "installed packages) composited on real backgrounds, as labelme leaves it.",
    )
    p.add_argument("out_dir", type=Path)
    p.add_argument("--images", type=int, help="number of images (default 160)")
    p.add_argument("--max-faces", type=int, help="at most this many faces per image (default 4)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random draw of scenes (default 0: the bundled model's training sample; make run uses 1)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet.apps.sample import SampleSettings, generate

    defaults = SampleSettings()
    count = generate(
        args.out_dir,
        SampleSettings(
            n_images=args.images or defaults.n_images, max_faces=args.max_faces or defaults.max_faces, seed=args.seed
        ),
    )
    print(f"wrote {count} images to {args.out_dir}/images and their LabelMe files to {args.out_dir}/labels")
