import pytest
import yaml
from dvc.utils.hydra import compose_and_dump

from conftest import ROOT
from facedet.config import ConfigError, compose_config, load_params


def test_committed_params_yaml_is_the_composition_of_conf(tmp_path):
    # What `dvc exp run` writes (DVC's own Hydra composition) must equal what `dvc repro` reads.
    compose_and_dump(tmp_path / "params.yaml", str(ROOT / "conf"), None, "config", "", [])
    assert (tmp_path / "params.yaml").read_text() == (ROOT / "params.yaml").read_text()


def test_compose_applies_overrides_like_dvc_exp_run_set_param():
    cfg = compose_config(["train.max_epochs=2", "model=single_face", "model.width=0.5"], root=ROOT)
    assert cfg.train.max_epochs == 2 and cfg.model.width == 0.5
    assert cfg.model.name == "single_face" and cfg.loss.name == "dense"  # groups switch independently


@pytest.mark.parametrize("override, key", [
    ("train.max_epochs=0", "train.max_epochs"),
    ("evaluate.threshold=1.5", "evaluate.threshold"),
    ("split.train=0.9", "split"),
    ("split.method=alphabetical", "split.method"),
    ("collect.jpeg_quality=0", "collect.jpeg_quality"),
    ("augment.copies=-1", "augment.copies"),
])
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
