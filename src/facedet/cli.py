"""The ``facedet`` command: run pipeline stages, make the sample, import labels, detect faces."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home on import otherwise

STAGES = {"collect": "facedet.collect", "labels": "facedet.labels.stage", "augment": "facedet.augment",
          "train": "facedet.train.stage", "evaluate": "facedet.evaluate.stage"}


def _run(args: argparse.Namespace) -> None:
    from facedet.config import compose_config, load_params

    cfg = load_params(args.params) if args.params else compose_config(args.overrides)
    if args.params and args.overrides:
        raise SystemExit("give either --params or overrides, not both (overrides belong in `dvc exp run -S`)")
    importlib.import_module(STAGES[args.stage]).run(cfg)


def _sample(args: argparse.Namespace) -> None:
    from facedet.sample import SampleSettings, generate

    count = generate(args.out_dir, SampleSettings(n_images=args.images, max_faces=args.max_faces, seed=args.seed))
    print(f"wrote {count} images to {args.out_dir}/images and their LabelMe files to {args.out_dir}/labels")


def _import(args: argparse.Namespace) -> None:
    from facedet import coco
    from facedet.labels.labelme import import_folder
    from facedet.problems import ProblemReport

    report = ProblemReport("import")
    images = import_folder(args.src, report, labels=args.labels)
    report.raise_if_strict(args.strict)
    coco.write(images, args.out)
    report_path = args.out.with_name(args.out.stem + ".report.json")
    faces = sum(len(i.boxes) for i in images)
    report.write(report_path, images=len(images), faces=faces, negatives=sum(not i.boxes for i in images))
    print(f"{args.out}: {len(images)} images, {faces} faces; {len(report.errors)} errors, "
          f"{len(report.problems) - len(report.errors)} warnings (see {report_path})")


def _detect(args: argparse.Namespace) -> None:
    from facedet.detect import DEFAULT_WEIGHTS, detect_to_json

    result = detect_to_json(args.src, args.json, args.weights or DEFAULT_WEIGHTS, args.threshold)
    faces = sum(len(i["faces"]) for i in result["images"])
    print(f"{args.json}: {faces} faces in {len(result['images'])} images; {len(result['errors'])} unreadable")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="facedet", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run one pipeline stage (what dvc.yaml calls)",
                       description="Run one pipeline stage with the config composed from conf/ (plus Hydra "
                                   "overrides such as train.max_epochs=2), or with --params params.yaml as DVC does.")
    p.add_argument("stage", choices=list(STAGES))
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. train.max_epochs=2 model.width=0.5")
    p.add_argument("--params", type=Path, help="read this params.yaml instead of composing conf/")
    p.set_defaults(func=_run)

    p = sub.add_parser("sample", help="write the embedded sample dataset (images + LabelMe files)",
                       description="Write a deterministic dataset of real faces (from pictures that ship in "
                                   "installed packages) composited on real backgrounds, as labelme leaves it.")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--images", type=int, default=160, help="number of images (default 160)")
    p.add_argument("--max-faces", type=int, default=1, help="at most this many faces per image (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_sample)

    p = sub.add_parser("import", help="LabelMe folder -> canonical COCO file, with a report of every problem",
                       description="Import a folder of images and LabelMe JSON (SRC/images + SRC/labels, or side "
                                   "by side) into the canonical COCO file; images without a JSON are negatives.")
    p.add_argument("src", type=Path)
    p.add_argument("--out", type=Path, required=True, help="COCO JSON to write; the report goes beside it")
    p.add_argument("--labels", nargs="+", default=["face"], help="shape labels that mean face (default: face)")
    p.add_argument("--strict", action="store_true", help="fail, listing every problem, instead of skipping")
    p.set_defaults(func=_import)

    p = sub.add_parser("detect", help="detect faces in an image or a folder, write JSON",
                       description="Detect faces; boxes are [x1, y1, x2, y2] in pixels of the original image.")
    p.add_argument("src", type=Path, help="an image or a folder of images")
    p.add_argument("--json", type=Path, required=True, help="where to write the detections")
    p.add_argument("--weights", type=Path, help="model file (default: the pipeline's last model, "
                                                f"results/train/model.safetensors)")
    p.add_argument("--threshold", type=float, help="minimum score (default: the model's)")
    p.set_defaults(func=_detect)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    from facedet.config import ConfigError
    from facedet.problems import DataError

    try:
        args.func(args)
    except (ConfigError, DataError, FileNotFoundError) as err:
        print(f"facedet {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
