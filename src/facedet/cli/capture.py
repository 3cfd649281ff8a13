"""``facedet capture``: take webcam (or video) pictures into data/images, as the tutorial did."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "capture",
        help="take webcam (or video) pictures into data/images, as the tutorial did",
        description="Take COUNT pictures INTERVAL seconds apart from a camera or a video file "
        "into OUT as <uuid1>.jpg, after a countdown, with a live preview when OpenCV "
        "can open a window. q (in the preview) or Ctrl-C stops, keeping what was "
        "taken. For a video file the interval is in video time and there is no "
        "countdown.",
    )
    p.add_argument("--source", default="0", help="camera index or video file (default 0, the first camera)")
    p.add_argument(
        "--out", type=Path, default=Path("data/images"), help="folder for the pictures (default data/images)"
    )
    p.add_argument("--count", type=int, default=30, help="number of pictures (default 30)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between pictures (default 0.5)")
    p.add_argument("--countdown", type=float, default=3, help="seconds before the first picture (default 3)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    preview = p.add_mutually_exclusive_group()
    preview.add_argument(
        "--preview",
        dest="preview",
        action="store_true",
        default=None,
        help="require the live preview: fail if OpenCV cannot open a window (the headless "
        "pip build cannot: install opencv-python). Default: show it when possible",
    )
    preview.add_argument("--no-preview", dest="preview", action="store_false", help="no live preview (headless)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet.apps.capture import capture, next_steps
    from facedet.problems import DataError

    try:
        result = capture(
            args.source,
            args.out,
            count=args.count,
            interval=args.interval,
            countdown=args.countdown,
            preview=args.preview,
            quality=args.quality,
            on_saved=lambda path, n: print(f"{n}/{args.count} {path}"),
        )
    except ValueError as err:  # VideoError (no camera, unreadable video, no window for --preview), bad numbers
        raise DataError(str(err)) from None
    why = {"count": "done", "end": "the video ended", "interrupted": "stopped (Ctrl-C)", "quit": "stopped (q)"}
    print(f"{why.get(result.stopped, result.stopped)}: {len(result.files)} pictures in {args.out}")
    if result.files:
        print(next_steps(args.out))
