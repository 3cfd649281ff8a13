"""A killed training run continues from its last checkpoint into the same MLflow run and ends where an
uninterrupted run ends: `facedet run train` as a subprocess, killed with SIGKILL after an epoch."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT

from facedet.apps.sample import SampleSettings, generate
from facedet.config import compose_config
from facedet.pipeline import augment, collect, labels
from facedet.training.resume import fingerprint, resume_point

# Small enough for seconds per epoch on a CPU; the shared data stages run once per project.
TINY = ["experiment=quick", "train.batch_size=8", "model.input_size=64"]


def tiny_project(folder, overrides=TINY):
    """A project folder (conf/, dvc.yaml) with the sample's collect/labels/augment outputs in results/."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "conf", folder / "conf")
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    generate(folder / "data", SampleSettings(n_images=24))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        cfg = compose_config(list(overrides))
        for stage in (collect, labels, augment):
            stage.run(cfg)
    finally:
        os.chdir(cwd)
    return folder


def facedet_env():
    env = {
        **os.environ,
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def train(project, *overrides, check=True):
    done = subprocess.run(
        ["facedet", "run", "train", *TINY, *overrides],
        cwd=project,
        env=facedet_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert done.returncode == 0, f"train failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


_SEEN: dict = {}  # last.ckpt's (mtime, size) -> its epoch, kept across polls


def _last_epoch(project, _seen=_SEEN):
    """The epoch of last.ckpt (-1: none yet), read again only when the file changed."""
    last = project / "results/train/checkpoints/last.ckpt"
    try:
        stamp = (last, last.stat().st_mtime_ns)
    except FileNotFoundError:
        return -1
    if stamp not in _seen:
        _seen[stamp] = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    return _seen[stamp]


def _metrics(project):
    summary = json.loads((project / "results/train/metrics.json").read_text())
    return {k: v for k, v in summary.items() if k.startswith(("train/", "val/", "best/"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same 3-epoch training twice: uninterrupted, and killed (SIGKILL) after epoch 1 then rerun."""
    tmp_path = tmp_path_factory.mktemp("resume")
    epochs = "train.max_epochs=3"
    whole = tiny_project(tmp_path / "whole")
    shutil.copytree(whole, tmp_path / "killed")
    killed = tmp_path / "killed"
    fresh = train(whole, epochs)

    # The real scenario: the process dies (no cleanup, no exception handler) once epoch 1 is checkpointed.
    process = subprocess.Popen(
        ["facedet", "run", "train", *TINY, epochs],
        cwd=killed,
        env=facedet_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while _last_epoch(killed) < 1 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.poll() is None, "training finished before it could be killed"
        assert _last_epoch(killed) >= 1
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert not (killed / "results/train/metrics.json").exists()
    assert _last_epoch(killed) < 2, "killed after the last epoch: nothing left to resume"
    first_run = json.loads((killed / "results/train/run.json").read_text())["run_id"]
    resumed = train(killed, epochs)
    return whole, killed, first_run, resumed, fresh


def test_a_killed_run_resumes_into_the_same_mlflow_run_with_the_same_result(runs):
    whole, killed, first_run, done, _ = runs
    assert f"resuming MLflow run {first_run}" in done.stderr
    assert "Restoring states from the checkpoint path" in done.stderr
    assert json.loads((killed / "results/train/run.json").read_text())["run_id"] == first_run

    expected, resumed = _metrics(whole), _metrics(killed)
    assert expected.keys() == resumed.keys() and "val/ap50" in expected
    for key, value in expected.items():
        assert abs(resumed[key] - value) <= 1e-6, (key, resumed[key], value)

    # One MLflow run holds all three epochs, and it is finished.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{killed / 'mlflow.db'}")
    assert len(client.search_runs([client.get_experiment_by_name("facedet").experiment_id])) == 1
    assert client.get_run(first_run).info.status == "FINISHED"
    whole_run = json.loads((whole / "results/train/run.json").read_text())["run_id"]
    steps = sorted({m.step for m in client.get_metric_history(first_run, "val/ap50")})
    assert len(steps) == 3 and steps == sorted(
        {m.step for m in MlflowClient(f"sqlite:///{whole / 'mlflow.db'}").get_metric_history(whole_run, "val/ap50")}
    )


def test_lightning_finds_no_file_of_ours_in_the_checkpoint_folder(runs):
    """The resume record lives beside checkpoints/, not in it: no "exists and is not empty" warning,
    neither on a fresh run nor on the resumed one (whose checkpoints are the ones it continues)."""
    whole, killed, _, resumed, fresh = runs
    for done in (fresh, resumed):
        assert "exists and is not empty" not in done.stdout + done.stderr
    for project in (whole, killed):
        assert sorted(p.name for p in (project / "results/train/checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_checkpoints_hold_only_tensors_and_primitive_types(runs):
    for project in runs[:2]:
        for name in ("last.ckpt", "best.ckpt"):
            path = project / "results/train/checkpoints" / name
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # refuses anything else
            assert "state_dict" in checkpoint
        assert checkpoint["epoch"] >= 0


def test_only_an_unfinished_run_with_the_same_config_data_and_code_resumes(runs, monkeypatch):
    killed = runs[1]
    monkeypatch.chdir(killed)
    out = killed / "results/train"
    cfg = compose_config([*TINY, "train.max_epochs=3"])
    key = fingerprint(cfg)
    assert key == json.loads((out / "run.json").read_text())["config_hash"]
    assert resume_point(cfg, out, key) is None  # finished: the next run is a new one

    state = json.loads((out / "run.json").read_text())
    assert state.pop("finished") is True
    (out / "run.json").write_text(json.dumps(state))  # as if killed while logging the model
    assert resume_point(cfg, out, key) == (runs[2], out / "checkpoints/last.ckpt", 2)

    for change in (
        ["train.lr=0.003"],
        ["train.max_epochs=4"],
        ["model.neck_width=8"],
        ["seed=1"],
        ["optimizer=sgd"],
        ["augment.min_face=2"],
        ["scheduler.warmup_steps=3"],
    ):
        other = compose_config([*TINY, "train.max_epochs=3", *change])
        assert fingerprint(other) != key and resume_point(other, out, fingerprint(other)) is None, change
    assert fingerprint(compose_config([*TINY, "train.max_epochs=3", "train.resume=false"])) == key
    assert resume_point(compose_config([*TINY, "train.max_epochs=3", "train.resume=false"]), out, key) is None

    images = {path: path.read_bytes() for path in (killed / "results/collect/images").rglob("*") if path.is_file()}
    try:
        for path, content in images.items():  # the validation pictures among them
            path.write_bytes(content + b"\0")
        assert fingerprint(cfg) != key  # other data: no resume
    finally:
        for path, content in images.items():
            path.write_bytes(content)


def test_a_run_killed_after_its_last_epoch_finishes_in_a_copy_of_the_project(runs, tmp_path):
    """Killed while logging the model (last.ckpt holds the final epoch), then the project copied to another
    folder: the rerun trains nothing and publishes the best epoch recorded before, read from the copy's
    own checkpoints (Lightning forgets a best score whose checkpoint folder moved)."""
    killed = runs[1]
    copy = tmp_path / "copied"
    shutil.copytree(killed, copy)
    state = json.loads((copy / "results/train/run.json").read_text())
    state.pop("finished", None)  # (the fixture's project may already be marked unfinished)
    (copy / "results/train/run.json").write_text(json.dumps(state))
    (killed / "results/train/checkpoints/best.ckpt").rename(killed / "best.ckpt.away")  # the copy reads its own
    original = {path: path.stat().st_mtime_ns for path in (killed / "mlartifacts").rglob("*")}
    try:
        done = train(copy, "train.max_epochs=3")
    finally:
        (killed / "best.ckpt.away").rename(killed / "results/train/checkpoints/best.ckpt")
    # The copy logs into its own mlartifacts/, nothing into the original's.
    assert {path: path.stat().st_mtime_ns for path in (killed / "mlartifacts").rglob("*")} == original
    assert (
        len(list((copy / "mlartifacts/models").iterdir())) == len(list((killed / "mlartifacts/models").iterdir())) + 1
    )
    assert f"resuming MLflow run {state['run_id']}" in done.stderr
    assert "dirpath has changed" not in done.stderr
    expected, published = _metrics(killed), _metrics(copy)
    for key in ("best/val_ap50", "best/val_f1", "best/threshold"):
        assert abs(published[key] - expected[key]) <= 1e-6, (key, published[key], expected[key])
    assert json.loads((copy / "results/train/run.json").read_text())["finished"] is True


@pytest.mark.slow
def test_a_damaged_record_or_an_unreachable_store_fails_in_one_line_and_deletes_nothing(runs, tmp_path, monkeypatch):
    """A killed run's checkpoints survive a resume that cannot go on: run.json not a record (valid
    JSON but no object, truncated), the MLflow store corrupt or not answering. Each is one line and
    exit status 2; put right, the run can be continued."""
    project = tmp_path / "project"
    shutil.copytree(runs[1], project)
    out = project / "results/train"
    state = json.loads((out / "run.json").read_text())
    state.pop("finished", None)  # (the fixture's project may already be marked unfinished)
    record = json.dumps(state)
    (out / "run.json").write_text(record)  # as if killed before the end
    kept = {p.name: p.read_bytes() for p in (out / "checkpoints").iterdir()}
    store = (project / "mlflow.db").read_bytes()

    def refused(expected, **env):
        done = subprocess.run(
            ["facedet", "run", "train", *TINY, "train.max_epochs=3"],
            cwd=project,
            env={**facedet_env(), **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
        assert done.returncode == 2 and len(errors) == 1 and expected in errors[0], done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert {p.name: p.read_bytes() for p in (out / "checkpoints").iterdir()} == kept

    for damaged in ('["x"]', record[: len(record) // 2]):
        (out / "run.json").write_text(damaged)
        refused("run.json: ")
        assert (out / "run.json").read_text() == damaged
    (out / "run.json").write_text(record)
    (project / "mlflow.db").write_bytes(b"not a database " * 100)
    refused("mlflow.db is not a readable SQLite database")
    (project / "mlflow.db").write_bytes(store)
    refused("server http://127.0.0.1:9 does not answer", MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    assert json.loads((out / "run.json").read_text()) == state

    monkeypatch.chdir(project)  # put right, the run is resumable again
    cfg = compose_config([*TINY, "train.max_epochs=3"])
    assert resume_point(cfg, out, fingerprint(cfg))[0] == state["run_id"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal and /proc: Linux")
@pytest.mark.slow
def test_a_trainer_dies_with_the_dvc_process_that_started_it_and_a_second_one_is_refused(tmp_path):
    project = tiny_project(tmp_path / "project")
    # DVC runs a stage as its child with DVC_STAGE set; this parent is killed like a killed `dvc repro`.
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])"]
        + ["facedet", "run", "train", *TINY, "train.max_epochs=100"],
        cwd=project,
        env={**facedet_env(), "DVC_STAGE": "train"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lock = project / "results/train/.facedet.lock"
    try:
        deadline = time.monotonic() + 240
        while not (project / "results/train/run.json").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        trainer = int(lock.read_text().split()[1])
        second = train(project, "train.max_epochs=100", check=False)
        errors = [line for line in second.stderr.splitlines() if "error" in line.lower()]
        assert second.returncode == 2 and len(errors) == 1, second.stderr[-2000:]
        assert f"is being trained by process {trainer}" in errors[0]
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 120
    while _alive(trainer) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(trainer), "the training outlived the process that started it"
