"""Record the workspace's pipeline results in git as the baseline that experiments are compared with
(``make compare``): dvc.lock, the .dvc files, params.yaml and the outputs DVC leaves to git (metrics and
plot data, ``cache: false``), never an output DVC caches itself.

An interrupted ``dvc repro`` can leave the ``.gitignore`` entries of cached outputs removed (DVC's
rollback), and a ``git add results`` would then commit them into git; here they are written back
first, and only the files listed above are added.

    python -m facedet.apps.baseline [-m MESSAGE]      (make baseline [MSG=...])
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

DEFAULT_MESSAGE = "Pipeline results (baseline)"


def baseline_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(the files to commit, the outputs DVC caches); every .gitignore entry of a cached output is
    written back on the way (DVC's own ignore rule)."""
    from dvc.repo import Repo

    repo = Repo(str(root))
    commit: set[Path] = {root / "dvc.lock", root / "params.yaml"}
    cached: list[Path] = []
    with repo.scm_context(quiet=True):
        for stage in repo.index.stages:
            if stage.path.endswith(".dvc"):
                commit.add(Path(stage.path))
            for out in stage.outs:
                path = Path(out.fs_path)
                if out.use_cache:
                    cached.append(path)
                    if path.exists():  # an output the pipeline made (stages not run yet have none)
                        out.ignore()
                        commit.add(path.parent / ".gitignore")
                elif path.is_file():
                    commit.add(path)
    return sorted(p for p in commit if p.is_file()), cached


def record(root: Path, message: str = DEFAULT_MESSAGE) -> list[str]:
    """git add + commit the baseline files; returns them (relative to root; none when git already has
    them as they are). Refuses (ValueError) when a DVC-cached output is staged, whatever staged it."""
    files, cached = baseline_files(root)
    names = [p.relative_to(root).as_posix() for p in files]
    subprocess.run(["git", "add", "--", *names], cwd=root, check=True)
    staged = subprocess.run(
        ["git", "diff", "--cached", "--name-only", "-z"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    tracked_by_dvc = [
        name for name in staged if name and any(root / name == c or c in (root / name).parents for c in cached)
    ]
    if tracked_by_dvc:
        raise ValueError(
            f"{tracked_by_dvc[0]} is staged in git but DVC tracks it (and {len(tracked_by_dvc) - 1} more): "
            f"git restore --staged {tracked_by_dvc[0]}; nothing was committed"
        )
    if subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=root).returncode == 0:
        return []  # the baseline in git is already this
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, check=True)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m facedet.apps.baseline",
        description="Commit the pipeline results (dvc.lock, .dvc files, params.yaml, metrics and plot data) "
        "to git as the baseline of `make compare`, after restoring DVC's .gitignore entries; never a "
        "file DVC caches.",
    )
    parser.add_argument(
        "-m", "--message", default=DEFAULT_MESSAGE, help=f"commit message (default: {DEFAULT_MESSAGE!r})"
    )
    args = parser.parse_args(argv)
    from facedet.config import project_root

    try:
        names = record(project_root(), args.message)
    except ValueError as err:  # also ConfigError: not in a project
        print(f"baseline: error: {err}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as err:
        print(f"baseline: error: {' '.join(err.cmd[:3])} failed (exit {err.returncode})", file=sys.stderr)
        return 2
    print(f"baseline committed: {', '.join(names)}" if names else "baseline: nothing new to commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
