"""train.init: fine-tuning starts from the weights of the file it names, and refuses another network."""

import pytest
import torch
from conftest import ROOT
from omegaconf import OmegaConf
from safetensors.torch import load_file

from facedet.config import ConfigError, compose_config
from facedet.inference.detector import BUNDLED_WEIGHTS
from facedet.model import build_net, weights
from facedet.training.finetune import load_initial_weights


def _small_cfg(*overrides):
    return compose_config(["model.widths=[8,8,16,16,16]", "model.neck_width=8", *overrides], root=ROOT).model


def test_fine_tuning_loads_exactly_the_weights_of_the_file(tmp_path):
    source = build_net(_small_cfg())
    for parameter in source.parameters():
        torch.nn.init.normal_(parameter)
    weights.save(source, OmegaConf.to_container(_small_cfg()), tmp_path / "m.safetensors")
    net = build_net(_small_cfg("model.input_size=640"))  # another input size is the same network
    assert (
        load_initial_weights(net, _small_cfg("model.input_size=640"), str(tmp_path / "m.safetensors"))
        == tmp_path / "m.safetensors"
    )
    stored = load_file(str(tmp_path / "m.safetensors"))
    state = net.state_dict()
    assert stored.keys() == state.keys()
    assert all(torch.equal(state[k], stored[k]) for k in stored)
    assert not torch.equal(build_net(_small_cfg()).state_dict()["predict.0.weight"], state["predict.0.weight"])


def test_bundled_is_the_packaged_model():
    saved = weights.read_metadata(BUNDLED_WEIGHTS)["model"]
    overrides = [
        f"model.{k}={list(v) if isinstance(v, list) else v}".replace(" ", "") for k, v in saved.items() if k != "name"
    ]
    model_cfg = compose_config([*overrides, "model.input_size=320"], root=ROOT).model
    net = build_net(model_cfg)
    assert load_initial_weights(net, model_cfg, "bundled") == BUNDLED_WEIGHTS
    assert torch.equal(net.state_dict()["predict.0.bias"], load_file(str(BUNDLED_WEIGHTS))["predict.0.bias"])


def test_the_default_run_fine_tunes_the_bundled_model_and_the_scratch_presets_do_not():
    default = compose_config([], root=ROOT)
    assert default.train.init == "bundled"
    net = build_net(default.model)  # the default network is the bundled model's: its weights load as they are
    assert load_initial_weights(net, default.model, default.train.init) == BUNDLED_WEIGHTS
    stored = load_file(str(BUNDLED_WEIGHTS))
    assert all(torch.equal(net.state_dict()[k], stored[k]) for k in stored)
    for preset in ("train=scratch", "train=long", "train=gpu", "experiment=bundled_boxes", "experiment=quick"):
        assert compose_config([preset], root=ROOT).train.init is None, preset


def test_another_network_or_no_file_is_a_clear_error(tmp_path):
    weights.save(build_net(_small_cfg()), OmegaConf.to_container(_small_cfg()), tmp_path / "m.safetensors")
    other = _small_cfg("model.neck_width=16")
    with pytest.raises(ConfigError, match=r"train.init.*model.neck_width = 16 here, 8 in the file"):
        load_initial_weights(build_net(other), other, str(tmp_path / "m.safetensors"))
    with pytest.raises(ConfigError, match="train.init.*no such model file"):
        load_initial_weights(build_net(other), other, str(tmp_path / "missing.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="train.init.*junk.safetensors is no facedet model file"):
        load_initial_weights(build_net(other), other, str(tmp_path / "junk.safetensors"))
