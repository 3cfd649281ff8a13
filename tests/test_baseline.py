"""`make baseline`: the pipeline's results into git, DVC's outputs never (real git + DVC)."""

import sys

from test_config import _dvc_project


def test_baseline_restores_dvcs_ignore_entries_and_commits_no_output_dvc_caches(tmp_path):
    project, sh = _dvc_project(tmp_path)
    sh("dvc", "repro", "labels")
    # What DVC's rollback of an interrupted `dvc repro` leaves: the cached outputs' .gitignore entries gone.
    (project / "results/.gitignore").unlink()
    done = sh(sys.executable, "-m", "facedet.apps.baseline", "-m", "baseline")
    assert "baseline committed: " in done.stdout
    committed = set(sh("git", "ls-files").stdout.split())
    assert {"dvc.lock", "data.dvc", "params.yaml", "results/.gitignore"} <= committed
    assert not [name for name in committed if name.startswith(("results/collect/", "results/labels/"))]
    assert sh("git", "log", "-1", "--format=%s").stdout.strip() == "baseline"
    assert "nothing new" in sh(sys.executable, "-m", "facedet.apps.baseline").stdout
    # The next experiment runs (a committed output would stop it: "already tracked by SCM").
    sh("dvc", "exp", "run", "-S", "collect.jpeg_quality=90", "labels")
