"""MLflow bookkeeping (facedet.tracking) in a real sqlite store: run names, dataset, UI kind, registry."""

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from mlflow.tracking import MlflowClient

from facedet import tracking
from facedet.config import compose_config


@pytest.fixture
def project(tmp_path, monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", tracking.RUN_TAGS_ENV):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("best.yaml"))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "data.dvc").write_text(
        yaml.safe_dump({"outs": [{"md5": "0123456789abcdef0123456789abcdef.dir", "path": "data", "nfiles": 3}]})
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_runs_are_named_by_what_differs_and_carry_the_dataset_and_a_description(project, monkeypatch):
    cfg = compose_config(["train.lr=0.005", "model.neck_width=32"])
    monkeypatch.setenv("DVC_EXP_NAME", "lr-high")
    run_id = tracking.start_run(cfg, run_name="dense")
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.run_name == "dense lr-high: model.neck_width=32 train.lr=0.005"
    assert "`train.lr` = `0.005`" in run.data.tags["mlflow.note.content"]
    (dataset,) = run.inputs.dataset_inputs
    assert (dataset.dataset.name, dataset.dataset.digest) == ("data", "0123456789abcdef0123456789abcdef.dir")
    assert (project / "data").as_uri() in dataset.dataset.source
    assert [(t.key, t.value) for t in dataset.tags] == [("mlflow.data.context", "train")]

    monkeypatch.delenv("DVC_EXP_NAME")
    with tracking.extra_tags({"sweep.name": "s", "sweep.trial": 3}):
        assert tracking.describe_run(compose_config([]))[0] == "s trial 3: defaults"
    assert tracking.describe_run(compose_config([]))[0] == "defaults"


def test_the_experiment_opens_on_training_runs_in_the_ui(project):
    cfg = compose_config([])
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    exp_id = tracking.experiment_id(cfg)
    assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == "custom_model_development"
    # A store made before the tag gets it on the next run.
    old = client.create_experiment("older")
    cfg.tracking.experiment = "older"
    assert tracking.experiment_id(cfg) == old
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_moved_project_logs_its_artifacts_where_it_is_now(project, tmp_path, monkeypatch):
    cfg = compose_config([])
    run_id = tracking.start_run(cfg)
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    assert client.get_run(run_id).info.artifact_uri.startswith((project / "mlartifacts").as_uri())
    moved = tmp_path / "copied"  # a copy of the project (moving it is the same for a new process)
    shutil.copytree(project, moved, ignore=shutil.ignore_patterns("copied"))
    monkeypatch.chdir(moved)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri exports it
    new_run = tracking.start_run(compose_config([]))
    client = MlflowClient(f"sqlite:///{moved / 'mlflow.db'}")
    for run in (run_id, new_run):
        assert client.get_run(run).info.artifact_uri.startswith((moved / "mlartifacts").as_uri() + "/")
    assert (moved / "mlartifacts" / new_run / "artifacts" / "config.yaml").is_file()
    assert not (project / "mlartifacts" / new_run).exists()  # nothing written into the original
    assert Path(client.download_artifacts(run_id, "config.yaml", str(tmp_path))).read_text().startswith("paths:")


def test_an_experiment_is_named_by_what_differs_from_its_baseline_commit(project, monkeypatch):
    import subprocess

    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(project / "params.yaml", str(project / "conf"), None, "config", "", ["experiment=quick"])
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "params.yaml"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"],
    ):
        subprocess.run(command, cwd=project, check=True)
    monkeypatch.setenv("DVC_EXP_NAME", "lr-high")
    monkeypatch.setenv(
        "DVC_EXP_BASELINE_REV",
        subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, text=True, capture_output=True).stdout.strip(),
    )
    name, description = tracking.describe_run(compose_config(["experiment=quick", "train.lr=0.005"]), "dense")
    assert name == "dense lr-high: train.lr=0.005"
    assert "- `train.lr` = `0.005`" in description and "params.yaml of" in description
    monkeypatch.delenv("DVC_EXP_NAME")
    monkeypatch.delenv("DVC_EXP_BASELINE_REV")
    assert tracking.describe_run(compose_config(["experiment=quick"]), "dense")[0] == "dense as committed"
    with tracking.extra_tags({"sweep.name": "s", "sweep.trial": 2, "sweep.values": '{"train.lr": 0.00123456}'}):
        name = tracking.describe_run(compose_config(["experiment=quick"]), "dense")[0]
    assert name == "dense s trial 2: train.lr=0.00123"
