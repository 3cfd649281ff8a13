"""Benchmark: the pipeline at scale, on generated data, in a temporary project folder.

    python experiments/bench_scale.py folder [--images 4000] [OVERRIDES...]
    python experiments/bench_scale.py wider  [--images 12880] [OVERRIDES...]

``folder``: a labelled folder of ``--images`` sample images (facedet's generator) through collect ->
labels -> augment -> train -> evaluate, each stage as `facedet run STAGE`: seconds and peak memory
(max RSS of the stage process; loader workers are separate processes, see train.num_workers) per
stage, and the size of results/ against the data's. ``wider``: a WIDER FACE-layout folder
(WIDER_train/images/<event>/, wider_face_split/wider_face_train_bbx_gt.txt) of ``--images`` images
with ``labels=wider``, the same stages, plus the training data loader's images/s alone against the
network's (forward + backward at the training size) images/s. Both train one epoch unless the
overrides say otherwise (``train.max_epochs=1 train.val_every=1`` are prepended). The targets of
issue 10: peak memory < 3 GB, results/ <= 1.5 x data.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facedet.stages import stage_specs

ROOT = Path(__file__).resolve().parents[1]
# The stages of dvc.yaml that do work, in its order, up to evaluate (validate only checks the params).
STAGES = tuple(name for name, spec in stage_specs(ROOT).items() if not spec.all_params and name != "export")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _stage(name: str, project: Path, overrides: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of `facedet run NAME` with the overrides."""
    started = time.perf_counter()
    process = subprocess.Popen(
        ["facedet", "run", name, *overrides],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {name} failed:\n{process.stderr.read()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def _sample_folder(out: Path, n: int) -> None:
    from facedet.apps.sample import SampleSettings, generate

    generate(out, SampleSettings(n_images=n))


def _wider_folder(out: Path, n: int) -> None:
    """The sample generator's pictures in WIDER FACE's layout, 1,000 per event folder."""
    from facedet.apps.sample import SampleSettings, generate_faces

    staging = out / "staging"
    faces = generate_faces(staging, SampleSettings(n_images=n))
    lines = []
    for index, (picture, image_faces) in enumerate(zip(sorted((staging / "images").glob("*.jpg")), faces)):
        relative = f"{index // 1000}--Event/{picture.name}"
        target = out / "WIDER_train/images" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        picture.rename(target)
        lines += [relative, str(len(image_faces))]
        lines += [
            f"{f.box[0]:.1f} {f.box[1]:.1f} {f.box[2] - f.box[0]:.1f} {f.box[3] - f.box[1]:.1f} 0 0 0 0 0 0"
            for f in image_faces
        ] or ["0 0 0 0 0 0 0 0 0 0"]
    (out / "wider_face_split").mkdir(parents=True)
    (out / "wider_face_split/wider_face_train_bbx_gt.txt").write_text("\n".join(lines) + "\n")
    shutil.rmtree(staging)


def _throughput(project: Path, overrides: list[str], batches: int = 20) -> dict[str, float]:
    """Images/s of the training data loader alone and of the network's training step alone."""
    import torch

    from facedet.config import compose_config
    from facedet.loss import build_loss
    from facedet.model import build_net
    from facedet.pipeline.train import datamodule

    cwd = os.getcwd()
    os.chdir(project)
    try:
        cfg = compose_config(overrides)
        net, loss = build_net(cfg.model), build_loss(cfg.loss)
        data = datamodule(cfg, net.resize)
        data.setup("fit")

        def forever():
            for epoch in itertools.count():
                loader = data.train_dataloader()
                loader.sampler.set_epoch(epoch)
                yield from loader

        loader = forever()
        started, seen = time.perf_counter(), 0
        batch = None
        for _ in range(batches):
            batch = next(loader)
            seen += len(batch[0])
        loader_rate = seen / (time.perf_counter() - started)
        optimizer = torch.optim.AdamW(net.parameters())
        images, targets = batch
        started = time.perf_counter()
        for _ in range(5):
            optimizer.zero_grad()
            loss(net(images), targets)["loss"].backward()
            optimizer.step()
        network_rate = 5 * len(images) / (time.perf_counter() - started)
    finally:
        os.chdir(cwd)
    return {"loader_images_per_s": round(loader_rate, 1), "network_images_per_s": round(network_rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=("folder", "wider"))
    parser.add_argument("--images", type=int)
    parser.add_argument("--keep", type=Path, help="build the project here and keep it (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    n = args.images or (4000 if args.case == "folder" else 12880)
    overrides = [
        "train.max_epochs=1",
        "train.val_every=1",
        *(["labels=wider"] if args.case == "wider" else []),
        *args.overrides,
    ]
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    with tempfile.TemporaryDirectory() as tmp:
        project = args.keep or Path(tmp)
        project.mkdir(parents=True, exist_ok=True)
        for name in ("conf", "dvc.yaml"):
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, project / name)
        started = time.perf_counter()
        (_sample_folder if args.case == "folder" else _wider_folder)(project / "data", n)
        print(f"generated {n} images in {time.perf_counter() - started:.0f} s")
        rows = {}
        for stage in STAGES:
            rows[stage] = _stage(stage, project, overrides, env)
            print(f"{stage:10s} {rows[stage][0]:8.1f} s  peak {rows[stage][1]:7.0f} MB", flush=True)
        data, results = _size(project / "data"), _size(project / "results")
        report = {
            "case": args.case,
            "images": n,
            "overrides": overrides,
            "seconds": {k: round(v[0], 1) for k, v in rows.items()},
            "peak_mb": {k: round(v[1]) for k, v in rows.items()},
            "data_mb": round(data / 2**20, 1),
            "results_mb": round(results / 2**20, 1),
            "results_over_data": round(results / data, 3),
        }
        if args.case == "wider":
            report.update(_throughput(project, overrides))
        metrics = project / "results/evaluate/metrics.json"
        if metrics.is_file():
            report["test_ap50"] = json.loads(metrics.read_text()).get("ap50")
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
