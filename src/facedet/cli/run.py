"""``facedet run``: run one pipeline stage (what dvc.yaml calls)."""

from __future__ import annotations

import argparse
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
    try:  # before any work: a rejected value costs nothing
        cfg = load_params(args.params) if args.params else compose_config(args.overrides)
    except ConfigError as err:
        if args.stage == "validate" and args.params:
            from facedet.pipeline.validate import put_back

            raise ConfigError(f"{err}{put_back(args.params)}") from None
        raise
    run_stage(args.stage, cfg)
