"""A team on real servers (facedet.apps.team): PostgreSQL, moto's S3 server and an MLflow server on
127.0.0.1, each test's own; sweep workers, a training and DVC working against them, with faults."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from conftest import ROOT
from mlflow.tracking import MlflowClient

from facedet.apps.sample import SampleSettings, generate
from facedet.apps.team import Ports, Team, TeamError, alive, pg_program

pytestmark = pytest.mark.slow

TINY = ["experiment=quick", "train.batch_size=8", "model.input_size=64"]

SEARCH = """\
name: team
metric: best/val_ap50
direction: maximize
n_trials: 3
storage: null
prune: false
seed: 0
startup_trials: 10
evaluate: false
write_experiment: null
params:
  train.lr: tag(log, interval(0.0005, 0.005))
  loss.box_weight: interval(0.5, 2.0)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _team_folder() -> Path:
    """A folder the postgres user can reach (pytest's own are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="facedet-team-"))
    folder.chmod(0o711)
    return folder / "team"


@pytest.fixture
def team():
    try:
        pg_program("pg_ctl")
    except TeamError as err:
        pytest.skip(str(err))
    folder = _team_folder()
    running = Team(folder, Ports(_free_port(), _free_port(), _free_port()))
    running.up()
    yield running
    running.down()
    shutil.rmtree(folder.parent, ignore_errors=True)


def facedet_env() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _worker_env(team: Team) -> dict[str, str]:
    return {**facedet_env(), **team.environment()}


def test_facedet_team_up_prints_a_workers_environment_and_down_stops_every_server(tmp_path):
    try:
        pg_program("pg_ctl")
    except TeamError as err:
        pytest.skip(str(err))
    folder = _team_folder()
    ports = [str(_free_port()) for _ in range(3)]
    options = ["--folder", str(folder), "--postgres-port", ports[0], "--s3-port", ports[1], "--mlflow-port", ports[2]]
    up = subprocess.run(["facedet", "team", "up", *options], env=facedet_env(), capture_output=True, text=True)
    assert up.returncode == 0, up.stderr[-2000:]
    assert f"export MLFLOW_TRACKING_URI=http://127.0.0.1:{ports[2]}" in up.stdout
    assert f"@127.0.0.1:{ports[0]}/optuna" in up.stdout and "make team-stop" in up.stdout
    pids = json.loads((folder / "team.json").read_text())["pids"]
    assert sorted(pids) == ["mlflow", "postgres", "s3"] and all(alive(pid) for pid in pids.values())
    with urllib.request.urlopen(f"http://127.0.0.1:{ports[2]}/health", timeout=10) as answer:
        assert answer.status == 200
    again = subprocess.run(["facedet", "team", "up", *options], env=facedet_env(), capture_output=True, text=True)
    assert again.returncode == 2 and "a team is recorded there already" in again.stderr
    down = subprocess.run(["facedet", "team", "down", "--folder", str(folder)], env=facedet_env(), capture_output=True)
    assert down.returncode == 0 and not folder.exists()
    assert not any(alive(pid) for pid in pids.values())
    shutil.rmtree(folder.parent, ignore_errors=True)


def _sweep_project(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "conf", folder / "conf", ignore=shutil.ignore_patterns("best.yaml"))
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    (folder / "conf/hparams_search/team.yaml").write_text(SEARCH)
    generate(folder / "data", SampleSettings(n_images=16))
    return folder


def _running_trial_of(client: MlflowClient, pid: int) -> str | None:
    experiment = client.get_experiment_by_name("facedet")
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id], f"attributes.status = 'RUNNING' and tags.`facedet.owner` LIKE '%:{pid}:%'"
    )
    return next((run.data.tags["sweep.trial"] for run in runs if "sweep.trial" in run.data.tags), None)


def test_two_sweep_workers_share_one_study_and_a_killed_one_loses_nothing(team, tmp_path):
    """Two `facedet sweep` processes on one Optuna study in PostgreSQL, logging to the MLflow server;
    one is killed (SIGKILL) in the middle of a trial. The study ends with exactly n_trials finished
    trials, the dead one failed by heartbeat and its MLflow run KILLED, one child run per trial under
    one parent, no trial drawn or run twice."""
    project = _sweep_project(tmp_path / "project")
    command = ["facedet", "sweep", "hparams_search=team", *TINY, "train.max_epochs=3", "train.val_every=1"]
    command.append(f"hparams_search.storage={team.database_url('optuna')}")
    logs = [open(tmp_path / f"worker{k}.log", "w") for k in range(2)]  # noqa: SIM115
    workers = [
        subprocess.Popen(command, cwd=project, env=_worker_env(team), stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    client = MlflowClient(team.tracking_uri)
    victim, survivor = workers
    deadline = time.monotonic() + 600
    while (killed_trial := _running_trial_of(client, victim.pid)) is None and victim.poll() is None:
        assert time.monotonic() < deadline, "the first worker started no trial"
        time.sleep(1)
    time.sleep(5)  # into its training
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert survivor.wait(timeout=1200) == 0, (tmp_path / "worker1.log").read_text()[-3000:]

    trials = optuna.load_study(study_name="team", storage=team.database_url("optuna")).get_trials()
    states = {t.number: t.state.name for t in trials}
    assert states[int(killed_trial)] == "FAIL"
    assert sorted(states.values()) == ["COMPLETE"] * 3 + ["FAIL"], states
    drawn = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(drawn)) == len(drawn)  # none drawn twice

    experiment = client.get_experiment_by_name("facedet").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`sweep.role` = 'parent'")
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.completed"] == "3"
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    by_trial = {run.data.tags["sweep.trial"]: run.info.status for run in children}
    assert len(children) == len(by_trial) == 4  # one run per trial, none ran twice
    assert by_trial == {str(n): "KILLED" if state == "FAIL" else "FINISHED" for n, state in states.items()}

    versions = client.search_model_versions("name = 'facedet'")
    champion = client.get_model_version_by_alias("facedet", "champion")
    scores = {v.version: float(v.tags["best.val_ap50"]) for v in versions}
    assert len({v.run_id for v in versions}) == len(versions) <= 3  # registered only when a trial beat the champion
    assert scores[champion.version] == max(scores.values())
    assert champion.run_id in {run.info.run_id for run in children}


def _prepared(folder: Path) -> Path:
    """A project (conf/, dvc.yaml) with the sample's collect/labels/augment outputs in results/."""
    from facedet.config import compose_config
    from facedet.pipeline import run_stage

    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "conf", folder / "conf", ignore=shutil.ignore_patterns("best.yaml"))
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    generate(folder / "data", SampleSettings(n_images=24))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        cfg = compose_config(TINY)
        for stage in ("collect", "labels", "augment"):
            run_stage(stage, cfg)
    finally:
        os.chdir(cwd)
    return folder


def test_a_training_waits_while_the_tracking_server_is_away_and_loses_nothing(team, tmp_path):
    """The MLflow server stopped for 20 s (then started again, which takes it a while) in the middle of
    a training: the training waits at its next logging call (MLflow's retries), then goes on; the run
    ends FINISHED with every epoch's metrics and its model registered."""
    project = _prepared(tmp_path / "project")
    epochs = 5
    log_file = tmp_path / "train.log"
    with open(log_file, "w") as log:
        training = subprocess.Popen(
            ["facedet", "run", "train", *TINY, f"train.max_epochs={epochs}", "train.val_every=1"],
            cwd=project,
            env=_worker_env(team),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = MlflowClient(team.tracking_uri)
    state = project / "results/train/run.json"
    deadline = time.monotonic() + 600
    while not (state.is_file() and client.get_metric_history(json.loads(state.read_text())["run_id"], "val/ap50")):
        assert training.poll() is None and time.monotonic() < deadline, log_file.read_text()[-3000:]
        time.sleep(1)
    run_id = json.loads(state.read_text())["run_id"]
    team.stop("mlflow")
    time.sleep(20)
    assert training.poll() is None, log_file.read_text()[-3000:]  # still training (or waiting)
    team.start("mlflow")
    assert training.wait(timeout=900) == 0, log_file.read_text()[-3000:]

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "val/ap50")]
    assert len(steps) == epochs and steps == sorted(set(steps))  # every epoch's validation, once
    assert "best.val_ap50" in run.data.metrics
    assert client.search_model_versions(f"run_id = '{run_id}'")  # registered
    assert f"run {team.tracking_uri}/#/experiments/" in log_file.read_text()  # the link is the server's


def _run(folder: Path, env: dict[str, str], *command: str) -> str:
    env = env | {
        f"GIT_{who}_{what}": v for who in ("AUTHOR", "COMMITTER") for what, v in (("NAME", "t"), ("EMAIL", "t@t"))
    }
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_a_second_clone_pulls_the_outputs_from_the_s3_remote_and_uses_the_teams_champion(team, tmp_path):
    """One clone runs the pipeline against the team's MLflow server and pushes to the DVC remote in
    the S3 bucket; a second clone pulls: nothing to rerun, and models:/facedet@champion resolves there."""
    from dvc.utils.hydra import compose_and_dump

    first = tmp_path / "first"
    first.mkdir()
    for name in ("conf", "src", "dvc.yaml"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, first / name)
    overrides = [*TINY, "train.max_epochs=1", "evaluate.robustness_images=2", "evaluate.grid_images=2"]
    compose_and_dump(first / "params.yaml", str(first / "conf"), None, "config", "", overrides)
    generate(first / "data", SampleSettings(n_images=24))
    env = _worker_env(team)
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "add", "-q", "data"], ["dvc", "repro"]):
        _run(first, env, *command)
    for command in team.dvc_remote_commands():
        _run(first, env, *command.split())
    _run(first, env, "dvc", "push")
    _run(first, env, "git", "add", "-A")
    _run(first, env, "git", "commit", "-qm", "a run")

    second = tmp_path / "second"
    _run(tmp_path, env, "git", "clone", "-q", str(first), str(second))
    for command in team.dvc_remote_commands():
        _run(second, env, *command.split())
    _run(second, env, "dvc", "pull")
    assert "up to date" in _run(second, env, "dvc", "status")
    assert "Running stage" not in _run(second, env, "dvc", "repro")
    picture = next((second / "data").rglob("*.jpg"))
    found = json.loads(
        _run(second, env, "facedet", "detect", str(picture), "--weights", "models:/facedet@champion", "--json", "-")
    )
    assert found["model"]["mlflow_run_id"] == json.loads((first / "results/train/run.json").read_text())["run_id"]
