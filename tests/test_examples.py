"""Every runnable example of the README and the docs runs here, in a temporary copy of the project at
tiny sizes, so that an example that fails, or that loses a file it was given, fails CI.

An example is the fenced ``bash`` or ``python`` block right after a marker line
``<!-- example: NAME -->`` (in README.md or docs/*.md): ``<!-- example: NAME (slow: why) -->`` runs
it with the slow tests, ``<!-- example: NAME (not run here: why) -->`` says why it is not run and
what runs it instead. Every fenced bash or python block of the README carries a marker, so a new one
cannot be left out by accident.

The copy of the project composes its defaults with ``experiment=quick`` (a tiny network, one epoch),
holds the sample as ``data/`` (tracked by DVC, committed), ``photo.jpg`` and ``photos/`` (pictures of
the sample), and uses this checkout's environment (``.venv``). A bash block runs under
``bash -euo pipefail``, a python block with the environment's python.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

MARKER = re.compile(
    r"^<!-- example: (?P<name>[\w-]+)(?: \((?P<note>[^)]*)\))? -->\n```(?P<lang>\w+)\n(?P<body>.*?)^```",
    re.M | re.S,
)
FENCE = re.compile(r"^```(bash|python)\n", re.M)
# What an example takes for granted, run before it: the first experiment follows `make run`.
BEFORE = {"first-experiment": ["dvc", "repro", "--quiet"]}
COPIED = ("conf", "src", "docs", "dvc.yaml", "mkdocs.yml", "Makefile", "pyproject.toml", "uv.lock", ".gitignore")


@dataclass(frozen=True)
class Example:
    page: str
    name: str
    note: str
    lang: str
    body: str

    @property
    def not_run(self) -> bool:
        return self.note.startswith("not run here")

    @property
    def slow(self) -> bool:
        return self.note.startswith("slow")


def examples(page: Path) -> list[Example]:
    text = page.read_text()
    rel = page.relative_to(ROOT).as_posix()
    return [Example(rel, m["name"], m["note"] or "", m["lang"], m["body"]) for m in MARKER.finditer(text)]


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
ALL = [example for page in PAGES for example in examples(page)]


def test_every_readme_block_is_an_example_and_every_example_says_why_it_is_not_run():
    readme = (ROOT / "README.md").read_text()
    assert len(FENCE.findall(readme)) == len(examples(ROOT / "README.md")), "a README block without a marker"
    names = [e.name for e in ALL]
    assert len(names) == len(set(names)), "two examples of one name"
    assert all(e.lang in ("bash", "python") for e in ALL)
    assert all(len(e.note) > len("not run here: ") for e in ALL if e.not_run)
    assert sum(not e.not_run for e in ALL) >= 4  # detect, detect-python, first-experiment, docs at least


def _env(project: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{project / '.venv/bin'}:{os.environ['PATH']}",
        "MPLBACKEND": "Agg",
        "NO_MKDOCS_2_WARNING": "1",
        **{
            f"GIT_{who}_{what}": value
            for who in ("AUTHOR", "COMMITTER")
            for what, value in (("NAME", "t"), ("EMAIL", "t@t"))
        },
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _run(project: Path, command: list[str]) -> None:
    done = subprocess.run(command, cwd=project, env=_env(project), capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _project(tmp_path: Path) -> Path:
    """A copy of the project at tiny sizes with the sample as its committed data."""
    from dvc.utils.hydra import compose_and_dump

    from facedet.apps.sample import SampleSettings, generate

    project = tmp_path / "project"
    project.mkdir()
    for name in COPIED:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, project / name)
    for name in (".venv", ".uv"):  # this checkout's environment: make finds it installed and up to date
        if (ROOT / name).exists():
            (project / name).symlink_to(ROOT / name)
    config = project / "conf/config.yaml"
    config.write_text(config.read_text().replace("  - experiment: null\n", "  - experiment: quick\n"))
    compose_and_dump(project / "params.yaml", str(project / "conf"), None, "config", "", [])
    generate(project / "data", SampleSettings(n_images=24, seed=1))
    pictures = sorted((project / "data/images").glob("*.jpg"))
    shutil.copy(pictures[0], project / "photo.jpg")
    for i, picture in enumerate(pictures[:3]):
        (project / f"photos/set{i}").mkdir(parents=True)
        shutil.copy(picture, project / f"photos/set{i}/{picture.name}")
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
        ["dvc", "add", "-q", "data"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "project"],
    ):
        _run(project, command)
    return project


def _files(project: Path) -> set[str]:
    """The project's files a user made or was given (not git's, DVC's or the environment's)."""
    skip = (".git", ".dvc", ".venv", ".uv")
    return {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and p.relative_to(project).parts[0] not in skip
    }


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(e, id=f"{e.page}:{e.name}", marks=[pytest.mark.slow] if e.slow else [])
        for e in ALL
        if not e.not_run
    ],
)
def test_the_example_runs_and_keeps_every_file(example: Example, tmp_path):
    project = _project(tmp_path)
    if example.name in BEFORE:
        _run(project, BEFORE[example.name])
    before = _files(project)
    if example.lang == "bash":
        _run(project, ["bash", "-euo", "pipefail", "-c", example.body])
    else:
        _run(project, [sys.executable, "-c", example.body])
    lost = sorted(before - _files(project))
    assert lost == [], f"{example.name} lost {lost[:10]}"
