"""``facedet export-labels``: canonical COCO file -> LabelMe JSON or YOLO txt files."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-labels",
        help="canonical COCO file -> LabelMe JSON or YOLO txt files",
        description="Write the faces (and their five landmarks, where labelled) of a canonical COCO file "
        "as LabelMe JSON (to correct them in labelme) or YOLO (YOLO-pose) txt files.",
    )
    p.add_argument("coco", type=Path, help="a canonical COCO file (e.g. results/labels/train.json)")
    p.add_argument("--to", choices=["labelme", "yolo"], required=True)
    p.add_argument("--images", type=Path, default=Path("."), help="the folder the COCO file names are relative to")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--left",
        choices=["image", "person"],
        default="image",
        help="whose left the written 'left_eye'/'mouth_left' landmarks mean (facedet's files: the image's)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet import coco
    from facedet.label_formats.export import export_labelme, export_yolo

    images = coco.read(args.coco)
    if args.to == "labelme":
        written = export_labelme(images, args.images, args.out, left=args.left)
    else:
        written = export_yolo(images, args.out, left=args.left)
    print(f"wrote {len(written)} {args.to} files to {args.out}")
