"""Benchmark: wall time of each stage of the default pipeline, in a temporary copy of the project.

    python experiments/bench_stages.py [--data FOLDER] [OVERRIDES...]

Without --data it runs on the embedded sample (what `make run` does). Overrides are Hydra overrides
(e.g. train.max_epochs=2). Prints one row per stage and the total, and the test metrics.
"""

from __future__ import annotations

import argparse
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
# The stages of dvc.yaml that do work, in its order (validate only checks the params).
STAGES = tuple(name for name, spec in stage_specs(ROOT).items() if not spec.all_params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="images + LabelMe folder (default: the embedded sample)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for name in ("conf", "dvc.yaml"):
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, project / name)
        started = time.perf_counter()
        if args.data:
            shutil.copytree(args.data, project / "data")
        else:
            subprocess.run(["facedet", "sample", "data"], cwd=project, env=env, check=True, capture_output=True)
        rows = [("data", time.perf_counter() - started)]
        for stage in STAGES:
            started = time.perf_counter()
            subprocess.run(
                ["facedet", "run", stage, *args.overrides], cwd=project, env=env, check=True, capture_output=True
            )
            rows.append((stage, time.perf_counter() - started))
        metrics = json.loads((project / "results/evaluate/metrics.json").read_text())
    print(f"{'stage':<10} {'seconds':>8}")
    for name, seconds in rows:
        print(f"{name:<10} {seconds:>8.1f}")
    print(f"{'total':<10} {sum(s for _, s in rows):>8.1f}")
    print("test metrics:", json.dumps({k: metrics[k] for k in ("ap50", "ap50_95", "mean_iou", "f1")}))


if __name__ == "__main__":
    main()
