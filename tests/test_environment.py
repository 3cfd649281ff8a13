"""The environment is the lock: `make setup` installs exactly what uv.lock pins."""

import re
import tomllib
from importlib import metadata

from conftest import ROOT


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_installed_distribution_is_the_locked_one():
    locked: dict[str, set[str]] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        locked.setdefault(_name(package["name"]), set()).add(package["version"])
    installed = {_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    assert {"torch", "scipy", "mlflow", "pytest", "dlib-bin"} <= installed.keys()  # direct, transitive, both extras
    off_lock = {name: version for name, version in installed.items() if version not in locked.get(name, ())}
    assert off_lock == {}, f"installed but not as locked (make setup installs the lock): {off_lock}"
