r"""Copy a dataset folder (``make run DATA=...``) without taking anything from outside it.

``python -m facedet.datacopy SRC DST``: DST (made, must not exist) gets every plain file of SRC,
and the content of every link to a file that the stages would read (a link inside SRC, or into a
DVC cache above it; [`facedet.images.link_allowed`][]). Links that lead out of SRC, links to
folders and special files (FIFOs, sockets, devices) are left out, each named on stderr. Copies are
writable by their owner (shared folders are often read-only). A name that is not UTF-8 (zip archives
made on Windows hold Latin-1 or CP437 names) is copied under its UTF-8 spelling with the odd bytes
written as ``\xNN`` (``caf\xe9.jpg``), named on stderr: DVC cannot track such names.

A label file (``.json``, ``.txt``, ``.xml``) left out takes its picture with it, named on stderr:
copied alone, the picture would look unlabelled and become a negative though its faces are unknown
(issue 13: an image whose labels could not be read is set aside). Its picture is the one with the
label file's stem in the same folder or in the matching images folder (``labels/`` -> ``images/``,
``Annotations/`` -> ``JPEGImages/``), else the only one with that stem in SRC.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

from facedet.images import IMAGE_EXTENSIONS, link_allowed

LABEL_SUFFIXES = (".json", ".txt", ".xml")  # LabelMe, YOLO, VOC
_IMAGES_OF = {"labels": "images", "annotations": "jpegimages"}  # a label folder -> its pictures' (lower case)


def utf8_name(name: str) -> str:
    """The name itself when it is UTF-8, else its bytes decoded with ``\\xNN`` for the odd ones."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def copy_dataset(src: Path, dst: Path) -> tuple[int, list[tuple[Path, str]]]:
    """(files copied, [(path in src, why it was left out or renamed)])."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: not a folder")
    dst.mkdir(parents=True)
    copied, left_out = 0, []
    pictures: dict[Path, Path] = {}  # copied pictures: path relative to src -> the copy
    lost_labels: list[Path] = []  # label files left out, relative to src
    for folder, subfolders, names in os.walk(src):  # followlinks=False: links to folders are not walked
        subfolders.sort()
        here = Path(folder)
        target = dst.joinpath(*(utf8_name(part) for part in here.relative_to(src).parts))
        if target.exists() and here != src:
            left_out.append((here, f"its UTF-8 name {target.name} is taken by another folder"))
            subfolders.clear()
            continue
        target.mkdir(exist_ok=True)
        if utf8_name(here.name) != here.name:
            left_out.append((here, f"renamed {target.name} (not UTF-8)"))
        for name in sorted(subfolders):
            if (here / name).is_symlink():
                left_out.append((here / name, "a link to a folder (not followed)"))
        for name in sorted(names):
            path = here / name
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
            except OSError:  # a dangling link
                regular = False
            why = None
            if not link_allowed(path, src):
                why = "a link that leads outside the folder"
            elif not regular:
                why = "not a regular file (a FIFO, socket, device or dangling link)"
            elif (target / utf8_name(name)).exists():
                why = f"its UTF-8 name {utf8_name(name)} is taken by another file"
            if why is not None:
                left_out.append((path, why))
                if path.suffix.lower() in LABEL_SUFFIXES:
                    lost_labels.append(path.relative_to(src))
            else:
                shutil.copyfile(path, target / utf8_name(name))  # the content, even through a link
                copied += 1
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    pictures[path.relative_to(src)] = target / utf8_name(name)
                if utf8_name(name) != name:
                    left_out.append((path, f"renamed {utf8_name(name)} (not UTF-8)"))
    for label in lost_labels:  # their pictures go too: their faces are unknown
        picture = _picture_of(label, pictures)
        if picture is not None:
            pictures.pop(picture).unlink()
            copied -= 1
            left_out.append(
                (src / picture, f"its label file {utf8_name(label.as_posix())} was left out (its faces are unknown)")
            )
    return copied, left_out


def _picture_of(label: Path, pictures: dict[Path, Path]) -> Path | None:
    """The copied picture (relative to src) that the label file ``label`` (relative to src) labels."""
    parts = [part.lower() for part in label.parent.parts]
    folders = [parts]
    for i in range(len(parts) - 1, -1, -1):  # the last labels/ or Annotations/ folder of the path
        if parts[i] in _IMAGES_OF:
            folders.append(parts[:i] + [_IMAGES_OF[parts[i]]] + parts[i + 1 :])
            break
    for folder in folders:
        found = [p for p in pictures if p.stem == label.stem and [q.lower() for q in p.parent.parts] == folder]
        if len(found) == 1:
            return found[0]
    found = [p for p in pictures if p.stem == label.stem]
    return found[0] if len(found) == 1 else None


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
        shown = utf8_name(str(path))
        print(
            f"datacopy: {shown}: {why}" if why.startswith("renamed") else f"datacopy: {shown}: left out: {why}",
            file=sys.stderr,
        )
    skipped = sum(not why.startswith("renamed") for _, why in left_out)
    print(f"datacopy: {copied} files copied from {args[0]} to {args[1]}; {skipped} left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
