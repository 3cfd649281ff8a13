"""The ``facedet`` command: run pipeline stages, make the sample, import labels, detect faces.

One module per command in this package, its parser next to its handler: ``add_parser(sub)``
adds the command and sets ``run`` as what it calls."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
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
    "team",
    "capture",
    "prelabel",
    "corpus",
    "bench",
)  # modules of this package, in the order --help lists them


def parser() -> argparse.ArgumentParser:
    from facedet import __version__

    top = argparse.ArgumentParser(prog="facedet", description=__doc__.split("\n\n")[0])
    top.add_argument("--version", action="version", version=f"facedet {__version__}")
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
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {os.fsdecode(err.filename)}" if err.filename else ""
        print(
            f"facedet {args.command}: error: the disk is full{where}; what was there before is kept: "
            "free some space and run the same command again",
            file=sys.stderr,
        )
        return 2
    return status or 0
