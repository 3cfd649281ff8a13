import json

import pytest
import yaml
from conftest import ROOT
from dvc.utils.hydra import compose_and_dump

from facedet.config import ConfigError, compose_config, load_params


def test_committed_params_yaml_is_the_composition_of_conf(tmp_path):
    # What `dvc exp run` writes (DVC's own Hydra composition) must equal what `dvc repro` reads.
    compose_and_dump(tmp_path / "params.yaml", str(ROOT / "conf"), None, "config", "", [])
    assert (tmp_path / "params.yaml").read_text() == (ROOT / "params.yaml").read_text()


def test_compose_applies_overrides_like_dvc_exp_run_set_param():
    cfg = compose_config(["train.max_epochs=2", "model=single_face", "model.width=0.5"], root=ROOT)
    assert cfg.train.max_epochs == 2 and cfg.model.width == 0.5
    assert cfg.model.name == "single_face" and cfg.loss.name == "dense"  # groups switch independently


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.max_epochs=0", "train.max_epochs"),
        ("evaluate.threshold=1.5", "evaluate.threshold"),
        ("split.train=0.9", "split"),
        ("split.method=alphabetical", "split.method"),
        ("split.seed=-1", "split.seed"),
        ("collect.jpeg_quality=0", "collect.jpeg_quality"),
        ("augment.copies=-1", "augment.copies"),
        ("model.landmark_depth=-1", "model.landmark_depth"),
    ],
)
def test_wrong_values_are_rejected_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose_config([override], root=ROOT)


def test_params_file_errors_name_the_file_and_key(tmp_path):
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "missing.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["lr"] = "fast"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="train.lr"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(
    "override, message",
    [
        ("loss.gamma=abc", "config key 'loss.gamma' = 'abc': expected a number >= 0"),
        ("model.input_size=40", "config key 'model.input_size' = 40: expected a multiple of 32"),
        ("train.accelerator=tpu", "config key 'train.accelerator' = 'tpu': expected cpu or gpu"),
        (
            "evaluate.threshold=1.5",
            "config key 'evaluate.threshold' = 1.5: expected null (the model's) or a number in [0, 1]",
        ),
        ("train.trainable=head", "config key 'train.trainable' = 'head': expected all or landmarks"),
        ("train.lrr=0.1", "config key 'train.lrr' is not known (did you mean 'train.lr'?)"),
        ("+train.max_epoch=3", "config key 'train.max_epoch' is not known (did you mean 'train.max_epochs'?)"),
        ("model=dens", "config group 'model' has no option 'dens' (did you mean 'dense'?)"),
        (
            "model.width=0.5",
            "config key 'model.width' is not in this composition (it is a key of conf/model/single_face",
        ),
    ],
)
def test_every_value_and_key_is_checked_in_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        compose_config([override], root=ROOT)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_training_only_the_landmarks_needs_a_landmark_network_and_a_model_to_start_from():
    for other in ("model.landmarks=false", "train.init=null"):
        with pytest.raises(ConfigError) as err:
            compose_config(["train.trainable=landmarks", other], root=ROOT)
        assert str(err.value) == (
            "config key 'train.trainable' = 'landmarks': "
            "expected all, or landmarks with model.landmarks=true and a train.init to start from"
        )
    assert compose_config(["train.trainable=landmarks"], root=ROOT).train.trainable == "landmarks"


def test_a_typo_in_a_params_file_names_the_closest_key(tmp_path, monkeypatch):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["loss"]["gama"] = params["loss"].pop("gamma")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError, match=r"'loss.gama' is not known \(did you mean 'loss.gamma'\?\)"):
        load_params(tmp_path / "params.yaml")


def _snapshot(project):
    files = [project / "params.yaml", project / "dvc.lock", *sorted((project / "results").rglob("*"))]
    return {str(p.relative_to(project)): p.read_bytes() for p in files if p.is_file()}


def _dvc_project(tmp_path, n_images=12):
    """A git + DVC copy of the project (conf, code, dvc.yaml, params.yaml, .dvc/config with Hydra) with
    a generated sample as data/, committed; returns it and a runner of commands in it."""
    import os
    import shutil
    import subprocess

    from facedet.apps.sample import SampleSettings, generate

    project = tmp_path / "project"
    project.mkdir()
    for name in ("conf", "src"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("best.yaml", "__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore", "pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / ".dvc", project / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    generate(project / "data", SampleSettings(n_images=n_images))
    env = {
        **os.environ,
        "PYTHONPATH": str(project / "src"),
        **dict.fromkeys(("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"), "t"),
    }
    env |= dict.fromkeys(("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"), "t@t")
    for name in ("DVC_ROOT", "MLFLOW_TRACKING_URI", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        env.pop(name, None)

    def sh(*command: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done

    sh("git", "init", "-q")
    sh("dvc", "add", "-q", "data")
    sh("git", "add", "-A")
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return project, sh


def test_a_rejected_dvc_exp_run_value_leaves_params_and_results_as_they_were(tmp_path):
    """Real git + DVC: the validate stage runs first, so nothing is deleted, and params.yaml is put back."""
    project, sh = _dvc_project(tmp_path)
    sh("dvc", "exp", "run", "-S", "collect.jpeg_quality=90", "labels")  # a valid experiment: results exist
    before = _snapshot(project)
    assert "results/labels/train.json" in before and b"jpeg_quality: 90" in before["params.yaml"]
    for bad in ("evaluate.threshold=1.5", "+train.lrr=0.1", "model.input_size=40"):
        done = sh("dvc", "exp", "run", "-S", bad, "labels", ok=False)
        key = bad.lstrip("+").split("=")[0]
        assert f"config key '{key}'" in done.stdout + done.stderr
        assert _snapshot(project) == before, bad


@pytest.mark.slow
def test_any_epoch_count_trains_and_validates_its_last_epoch_and_cross_key_rules_stop_before_dvc(tmp_path):
    """README: `dvc exp run -S train.max_epochs=2` and `facedet run train train.max_epochs=2` with
    train.val_every 5 train 2 epochs and keep a validated model; a value that only a stage could reject
    (the model file train.init names is another network; no best checkpoint; a bad collect source) is
    refused by the validate stage, before DVC deletes the trained model."""
    import torch

    project, sh = _dvc_project(tmp_path)
    tiny = ["-S", "experiment=quick", "-S", "train.batch_size=8"]
    sh("dvc", "exp", "run", *tiny, "-S", "train.max_epochs=2", "-S", "train.val_every=5", "train")
    train = project / "results/train"
    metrics = json.loads((train / "metrics.json").read_text())
    assert 0 <= metrics["best/val_ap50"] <= 1 and "val/ap50" in metrics
    assert torch.load(train / "checkpoints/last.ckpt", weights_only=True)["epoch"] == 1  # 2 epochs, 0-based
    assert (train / "checkpoints/best.ckpt").is_file() and (train / "model.safetensors").is_file()

    before = _snapshot(project)
    for bad, key in (
        ("train.init=bundled", "train.init"),  # the bundled model is not experiment=quick's tiny network
        ("callbacks.best_checkpoint=null", "callbacks.best_checkpoint"),
        ("collect.sources=[{type: folder}]", "collect.sources[0].path"),
    ):
        done = sh("dvc", "exp", "run", *tiny, "-S", "train.max_epochs=2", "-S", bad, "train", ok=False)
        assert f"config key '{key}'" in done.stdout + done.stderr, bad
        assert "Traceback" not in done.stdout + done.stderr
        assert _snapshot(project) == before, bad

    # The stage from the command line, 3 epochs validated every 2: epochs 2 and 3 are validated.
    done = sh(
        "facedet", "run", "train", "experiment=quick", "train.batch_size=8", "train.max_epochs=3", "train.val_every=2"
    )
    assert "best val AP@0.5" in done.stdout
    # No notice a user cannot act on: Lightning's litlogger advertisement and LeafSpec deprecation,
    # MLflow's note on torch's "+cpu" version and its failed `uv export` of the project's uv.lock.
    for notice in ("litlogger", "LeafSpec", "local version label", "uv export"):
        assert notice not in done.stdout + done.stderr, notice
    assert torch.load(train / "checkpoints/last.ckpt", weights_only=True)["epoch"] == 2
