"""Copy a dataset folder (``make run DATA=...``) without taking anything from outside it.

``python -m facedet.datacopy SRC DST``: DST (made, must not exist) gets every plain file of SRC,
and the content of every link to a file that the stages would read (a link inside SRC, or into a
DVC cache above it; :func:`facedet.images.link_allowed`). Links that lead out of SRC, links to
folders and special files (FIFOs, sockets, devices) are left out, each named on stderr. Copies are
writable by their owner (shared folders are often read-only). Any file name is copied as it is.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

from facedet.images import link_allowed


def copy_dataset(src: Path, dst: Path) -> tuple[int, list[tuple[Path, str]]]:
    """(files copied, [(path in src, why it was left out)])."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: not a folder")
    dst.mkdir(parents=True)
    copied, left_out = 0, []
    for folder, subfolders, names in os.walk(src):  # followlinks=False: links to folders are not walked
        subfolders.sort()
        here = Path(folder)
        target = dst / here.relative_to(src)
        target.mkdir(exist_ok=True)
        for name in sorted(subfolders):
            if (here / name).is_symlink():
                left_out.append((here / name, "a link to a folder (not followed)"))
        for name in sorted(names):
            path = here / name
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
            except OSError:  # a dangling link
                regular = False
            if not link_allowed(path, src):
                left_out.append((path, "a link that leads outside the folder"))
            elif not regular:
                left_out.append((path, "not a regular file (a FIFO, socket, device or dangling link)"))
            else:
                shutil.copyfile(path, target / name)  # the content, even through a link; mode: the umask's
                copied += 1
    return copied, left_out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m facedet.datacopy SRC DST", file=sys.stderr)
        return 2
    try:
        copied, left_out = copy_dataset(Path(args[0]), Path(args[1]))
    except (FileNotFoundError, FileExistsError) as err:
        print(f"datacopy: error: {err}", file=sys.stderr)
        return 2
    for path, why in left_out:
        print(f"datacopy: {os.fsdecode(path)}: left out: {why}", file=sys.stderr)
    print(f"datacopy: {copied} files copied from {args[0]} to {args[1]}; {len(left_out)} left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
