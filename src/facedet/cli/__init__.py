"""The ``facedet`` command: run pipeline stages, make the sample, import labels, detect faces.

One module per command in this package, its parser next to its handler: ``add_parser(sub)``
adds the command and sets ``run`` as what it calls."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = (
    "run",
    "sample",
    "import_labels",
    "export_labels",
    "align",
    "detect",
    "export",
    "sweep",
    "capture",
    "prelabel",
    "corpus",
    "bench",
)  # modules of this package, in the order --help lists them


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="facedet", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
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
