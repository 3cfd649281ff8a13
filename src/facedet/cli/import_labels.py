"""``facedet import``: labels in any supported format -> canonical COCO file, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="labels in any supported format -> canonical COCO file, with a report",
        description="Import a dataset's labels into the canonical COCO file; every problem is "
        "listed in FILE.report.json beside it. Formats: labelme (SRC/images + "
        "SRC/labels, or side by side; images without a JSON are negatives), wider, "
        "fddb, coco, yolo, voc.",
    )
    p.add_argument("src", type=Path, help="the dataset folder")
    p.add_argument("--out", type=Path, required=True, help="COCO JSON to write; the report goes beside it")
    p.add_argument("--format", default="labelme", choices=["labelme", "wider", "fddb", "coco", "yolo", "voc"])
    p.add_argument("--labels", nargs="+", default=["face"], help="labelme shape labels that mean face")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an importer option, e.g. --option min_size=10 --option split=val (wider), "
        "--option 'classes=[0, 1]' (yolo); see conf/labels/",
    )
    p.add_argument("--strict", action="store_true", help="fail, listing every problem, instead of skipping")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import yaml

    from facedet import coco
    from facedet.label_formats.registry import import_labels
    from facedet.problems import DataError, ProblemReport

    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--option {item!r}: expected KEY=VALUE")
        options[key] = yaml.safe_load(value)
    if args.format == "labelme":
        options.setdefault("names", args.labels)
    report = ProblemReport("import")
    try:
        images = import_labels(args.format, args.src, report, **options)
    except ValueError as err:
        raise DataError(str(err)) from None
    report.raise_if_strict(args.strict)
    coco.write(images, args.out)
    report_path = args.out.with_name(args.out.stem + ".report.json")
    faces = sum(len(i.boxes) for i in images)
    report.write(
        report_path,
        images=len(images),
        faces=faces,
        negatives=sum(not i.boxes for i in images),
        ignore_regions=sum(len(i.ignore) for i in images),
    )
    print(
        f"{args.out}: {len(images)} images, {faces} faces; {len(report.errors)} errors, "
        f"{len(report.problems) - len(report.errors)} warnings (see {report_path})"
    )
