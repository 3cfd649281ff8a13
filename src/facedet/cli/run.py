"""``facedet run``: run one pipeline stage (what dvc.yaml calls)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from facedet.pipeline import stage_names

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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet.config import ConfigError, compose_config, load_params
    from facedet.pipeline import run_stage

    if args.params and args.overrides:
        raise SystemExit("give either --params or overrides, not both (overrides belong in `dvc exp run -S`)")
    if os.environ.get("DVC_STAGE"):  # run by dvc repro / dvc exp run
        _die_with_parent()
    try:  # before any work: a rejected value costs nothing
        cfg = load_params(args.params) if args.params else compose_config(args.overrides)
        if args.stage == "validate":  # its checks that read files (train.init's model) are rejections too
            run_stage(args.stage, cfg)
            return
    except ConfigError as err:
        if args.stage == "validate" and args.params:
            from facedet.pipeline.validate import put_back

            raise ConfigError(f"{err}{put_back(args.params)}") from None
        raise
    run_stage(args.stage, cfg)


def _die_with_parent() -> None:
    """SIGTERM to this stage when the DVC process that started it dies (Linux), so that a killed
    ``dvc repro`` leaves no stage running on, writing the outputs the next run works on."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
