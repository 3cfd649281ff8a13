"""MLflow bookkeeping (facedet.tracking) in a real sqlite store: run names, dataset, UI kind, registry."""

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from facedet.config import compose_config
from facedet.tracking import StoreUnavailable, Tracker, describe_run, resolve_model_uri, run_tags, store_uri


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path, monkeypatch, clean_env):
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
    run_id = Tracker.for_config(cfg).start_run(cfg, "dense")
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.run_name == "dense lr-high: model.neck_width=32 train.lr=0.005"
    assert "`train.lr` = `0.005`" in run.data.tags["mlflow.note.content"]
    (dataset,) = run.inputs.dataset_inputs
    assert (dataset.dataset.name, dataset.dataset.digest) == ("data", "0123456789abcdef0123456789abcdef.dir")
    assert (project / "data").as_uri() in dataset.dataset.source
    assert [(t.key, t.value) for t in dataset.tags] == [("mlflow.data.context", "train")]

    monkeypatch.delenv("DVC_EXP_NAME")
    assert (
        describe_run(compose_config([]), project, tags={"sweep.name": "s", "sweep.trial": "3"})[0]
        == "s trial 3: defaults"
    )
    assert describe_run(compose_config([]), project)[0] == "defaults"
    # Tags given to a run are the run's (a sweep trial's parent), and only its.
    tagged = Tracker.for_config(cfg).start_run(cfg, "dense", {"mlflow.parentRunId": run_id, "sweep.trial": 3})
    assert client.get_run(tagged).data.tags["mlflow.parentRunId"] == run_id
    assert client.get_run(tagged).data.tags["sweep.trial"] == "3"
    assert "mlflow.parentRunId" not in client.get_run(Tracker.for_config(cfg).start_run(cfg)).data.tags


def test_the_experiment_opens_on_training_runs_in_the_ui(project):
    cfg = compose_config([])
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    exp_id = Tracker.for_config(cfg).ensure_experiment()
    assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == "custom_model_development"
    # A store made before the tag gets it on the next run.
    old = client.create_experiment("older")
    cfg.tracking.experiment = "older"
    assert Tracker.for_config(cfg).ensure_experiment() == old
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_moved_project_logs_its_artifacts_where_it_is_now(project, tmp_path, monkeypatch):
    cfg = compose_config([])
    run_id = Tracker.for_config(cfg).start_run(cfg)
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    assert client.get_run(run_id).info.artifact_uri.startswith((project / "mlartifacts").as_uri())
    moved = tmp_path / "copied"  # a copy of the project (moving it is the same for a new process)
    shutil.copytree(project, moved, ignore=shutil.ignore_patterns("copied"))
    monkeypatch.chdir(moved)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri exports it
    new_run = Tracker.for_config(compose_config([])).start_run(compose_config([]))
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
    name, description = describe_run(compose_config(["experiment=quick", "train.lr=0.005"]), project, "dense")
    assert name == "dense lr-high: train.lr=0.005"
    assert "- `train.lr` = `0.005`" in description and "params.yaml of" in description
    monkeypatch.delenv("DVC_EXP_NAME")
    monkeypatch.delenv("DVC_EXP_BASELINE_REV")
    assert describe_run(compose_config(["experiment=quick"]), project, "dense")[0] == "dense as committed"
    trial = {"sweep.name": "s", "sweep.trial": "2", "sweep.values": '{"train.lr": 0.00123456}'}
    assert (
        describe_run(compose_config(["experiment=quick"]), project, "dense", trial)[0]
        == "dense s trial 2: train.lr=0.00123"
    )


def test_queued_dvc_experiment_logs_to_the_original_store_and_is_tagged(tmp_path, monkeypatch, clean_env):
    original = tmp_path / "repo"
    copy = original / ".dvc/tmp/exps/tmpq1w2e3"  # where `dvc queue start` runs an experiment
    for folder in (original, copy):
        (folder / "conf").mkdir(parents=True)
        (folder / "dvc.yaml").write_text("stages: {}\n")
    cfg = OmegaConf.create({"tracking": {"uri": None, "experiment": "facedet"}})
    monkeypatch.chdir(copy)
    assert Tracker.for_config(cfg).uri == f"sqlite:///{copy.resolve() / 'mlflow.db'}"  # outside DVC: its own

    # What DVC's queue puts in the environment of a queued run (dvc/repo/experiments/queue/base.py).
    monkeypatch.setenv("DVC_ROOT", str(original))
    monkeypatch.setenv("DVC_EXP_NAME", "quick-lr")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0123abcd")
    assert Tracker.for_config(cfg).uri == store_uri() == f"sqlite:///{original.resolve() / 'mlflow.db'}"
    tags = run_tags(copy)
    assert tags["dvc.experiment"] == "quick-lr" and tags["dvc.baseline_rev"] == "0123abcd"

    # An explicit store still wins; a DVC_ROOT that is no facedet project is ignored.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(
        StoreUnavailable, match=r"server http://127.0.0.1:9 does not answer"
    ):  # checked, and it is that one
        Tracker.for_config(cfg)
    assert Tracker.for_config(OmegaConf.create({"tracking": {"uri": "sqlite:////x.db"}})).uri == "sqlite:////x.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert Tracker.for_config(cfg).uri == f"sqlite:///{copy.resolve() / 'mlflow.db'}"


def test_a_model_uri_is_resolved_in_the_store_a_queued_experiment_logs_to(project, tmp_path, monkeypatch):
    """``train.init=models:/...`` inside ``dvc exp run --queue``: the original project's store, not the copy's."""
    cfg = compose_config([])
    tracker = Tracker.for_config(cfg)
    run_id = tracker.start_run(cfg)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights of the run")
    tracker.log_artifact(run_id, weights, "weights")
    copy = project / ".dvc/tmp/exps/tmpq1w2e3"
    shutil.copytree(project / "conf", copy / "conf")
    shutil.copy(project / "dvc.yaml", copy / "dvc.yaml")
    monkeypatch.chdir(copy)
    monkeypatch.setenv("DVC_ROOT", str(project))
    assert resolve_model_uri(f"runs:/{run_id}").read_bytes() == b"weights of the run"
    assert Tracker.for_config(cfg).resolve_model_uri(f"runs:/{run_id}").read_bytes() == b"weights of the run"
    # tracking.uri names another store: the run is looked up there (and is not in it).
    elsewhere = OmegaConf.merge(cfg, {"tracking": {"uri": f"sqlite:///{tmp_path / 'other.db'}"}})
    with pytest.raises(ValueError, match="other.db"):
        Tracker.for_config(elsewhere).resolve_model_uri(f"runs:/{run_id}")
