"""Every option of every conf group the train stage builds with Hydra composes and instantiates
(after lightning-hydra-template's tests/test_configs.py)."""

import shutil

import pytest
import pytorch_lightning as pl
import torch
from conftest import ROOT
from dvc.utils.hydra import compose_and_dump
from hydra.utils import instantiate
from omegaconf import OmegaConf

from facedet.config import ConfigError, compose_config, load_params, validate
from facedet.config_schema import PRESET_GROUPS
from facedet.loss import build_loss
from facedet.model import build_net
from facedet.training import augment
from facedet.training.module import FaceDetectorModule


def _options(group):
    return sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))


GROUPS = sorted(p.name for p in (ROOT / "conf").iterdir() if p.is_dir())
EVERY_OPTION = [f"{group}={option}" for group in GROUPS for option in _options(group)]


def _composes_and_validates(override, root, params_file):
    """Both ways a config reaches the stages: `facedet run STAGE OVERRIDES` (compose_config) and
    `dvc exp run -S OVERRIDE` (params.yaml composed by DVC, read back by load_params)."""
    cfg = compose_config([override], root=root)
    validate(cfg, root / "conf")
    compose_and_dump(params_file, str(root / "conf"), None, "config", "", [override])
    return cfg, load_params(params_file)


@pytest.mark.parametrize("override", EVERY_OPTION)
def test_every_option_of_every_group_composes_and_validates(override, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # load_params checks a params file kept outside a project against this conf/
    cfg, params = _composes_and_validates(override, ROOT, tmp_path / "params.yaml")
    group, option = override.split("=")
    assert group in cfg or group in PRESET_GROUPS
    if group in PRESET_GROUPS:  # a preset over other keys (# @package _global_): its own values win
        preset = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / group / f"{option}.yaml"))
        for entry in preset.pop("defaults", []):  # `override /callbacks: ema`: that option is chosen
            for chosen_group, chosen in entry.items() if isinstance(entry, dict) else []:
                chosen_group = chosen_group.removeprefix("override /")
                alone = compose_config([f"{chosen_group}={chosen}"], root=ROOT)[chosen_group]
                alone = OmegaConf.merge(alone, preset.get(chosen_group, {}))  # and the preset's own keys
                assert OmegaConf.to_container(cfg[chosen_group]) == OmegaConf.to_container(alone)
        assert OmegaConf.to_container(OmegaConf.masked_copy(cfg, list(preset)), resolve=True) == OmegaConf.to_container(
            OmegaConf.merge(OmegaConf.masked_copy(cfg, list(preset)), preset), resolve=True
        )
    assert OmegaConf.to_container(cfg, resolve=True) == OmegaConf.to_container(params, resolve=True)


def test_every_group_is_covered_and_a_broken_preset_fails(tmp_path, monkeypatch):
    assert {"experiment=bundled", "experiment=quick", "hparams_search=sample_optuna", "trainer=default"} <= set(
        EVERY_OPTION
    )
    assert set(GROUPS) >= {
        *("experiment", "labels", "split", "collect", "hparams_search", "evaluate", "tracking", "paths", "model"),
        *("loss", "optimizer", "scheduler", "callbacks", "train", "trainer", "augment"),
    }
    root = tmp_path / "project"
    shutil.copytree(ROOT / "conf", root / "conf")
    (root / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(root)
    (root / "conf/experiment/broken.yaml").write_text("# @package _global_\ntrain: {max_epochs: -1}\n")
    with pytest.raises(ConfigError, match="train.max_epochs"):
        _composes_and_validates("experiment=broken", root, root / "params.yaml")
    (root / "conf/experiment/broken.yaml").write_text("# @package _global_\ndefaults: [{override /model: nope}]\n")
    with pytest.raises(ConfigError):
        _composes_and_validates("experiment=broken", root, root / "params.yaml")


@pytest.mark.parametrize("name", _options("optimizer"))
def test_every_optimizer_builds_and_steps(name):
    cfg = compose_config([f"optimizer={name}", "train.lr=0.01"], root=ROOT)
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = instantiate(cfg.optimizer)(params=[weight])
    assert isinstance(optimizer, torch.optim.Optimizer) and optimizer.param_groups[0]["lr"] == 0.01
    weight.sum().backward()
    optimizer.step()
    assert torch.all(weight < 1)


@pytest.mark.parametrize("name", _options("scheduler"))
def test_every_scheduler_builds_and_ends_low(name):
    cfg = compose_config([f"scheduler={name}", "train.lr=0.01"], root=ROOT)
    optimizer = instantiate(cfg.optimizer)(params=[torch.nn.Parameter(torch.ones(1))])
    scheduler = instantiate(cfg.scheduler)(optimizer, total_steps=200)
    rates = []
    for _ in range(200):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert max(rates) == pytest.approx(0.01, rel=0.05) and rates[-1] < 0.001 and rates[0] < max(rates)


def test_warmup_cosine_by_hand():
    cfg = compose_config(["train.lr=1.0"], root=ROOT)
    optimizer = instantiate(cfg.optimizer)(params=[torch.nn.Parameter(torch.ones(1))])
    instantiate(cfg.scheduler, warmup_steps=10, warmup_ratio=0.1, min_ratio=0.0)(optimizer, total_steps=110)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # step 0: 0.1 + 0.9 * 0 / 10
    # warmup is capped at a tenth of the run: 11 steps here; at step 60 cosine is half-way: 0.5
    assert instantiate(cfg.scheduler, warmup_steps=10, min_ratio=0.0)(optimizer, total_steps=110).lr_lambdas[0](
        60
    ) == pytest.approx(0.5)


@pytest.mark.parametrize("name", _options("callbacks"))
def test_every_callback_set_builds(name, tmp_path):
    cfg = compose_config([f"callbacks={name}", f"paths.train={tmp_path}"], root=ROOT)
    callbacks = {key: instantiate(spec) for key, spec in cfg.callbacks.items()}
    assert all(isinstance(c, pl.Callback) for c in callbacks.values())
    assert callbacks["best_checkpoint"].monitor == "val/ap50"
    assert str(callbacks["last_checkpoint"].dirpath) == str(tmp_path / "checkpoints")


@pytest.mark.parametrize("preset", _options("train"))
def test_every_train_preset_composes_and_the_cpu_ones_build_a_trainer(preset):
    cfg = compose_config([f"train={preset}"], root=ROOT)
    if cfg.train.accelerator == "gpu":  # no GPU here: check what would reach Lightning
        trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
        assert trainer_cfg["accelerator"] == "gpu"
        if preset == "gpu":
            assert trainer_cfg["precision"] == "bf16-mixed" and cfg.train.num_workers > 0 and cfg.train.pin_memory
        return
    trainer = instantiate(cfg.trainer, enable_progress_bar=False, logger=False, enable_checkpointing=False)
    assert isinstance(trainer, pl.Trainer) and trainer.max_epochs == cfg.train.max_epochs


@pytest.mark.parametrize("name", _options("model"))
def test_every_model_and_its_loss_build_and_train_one_step(name):
    cfg = compose_config([f"model={name}", f"loss={name}", "model.input_size=64"], root=ROOT)
    net, loss = build_net(cfg.model), build_loss(cfg.loss)
    module = FaceDetectorModule(net, loss, instantiate(cfg.optimizer), instantiate(cfg.scheduler))
    images = torch.rand(2, 3, 64, 64)
    targets = [
        {"boxes": torch.tensor([[0.2, 0.2, 0.6, 0.7]]), "ignore": torch.zeros(0, 4), "index": torch.tensor(0)},
        {"boxes": torch.zeros(0, 4), "ignore": torch.zeros(0, 4), "index": torch.tensor(1)},
    ]
    value = module.training_step((images, targets), 0)
    value.backward()
    assert torch.isfinite(value) and any(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("name", _options("augment"))
def test_every_augment_preset_builds_and_serialises(name, tmp_path):
    cfg = compose_config([f"augment={name}"], root=ROOT)
    pipeline = augment.build(cfg.augment)
    augment.save(pipeline, tmp_path / "pipeline.yaml")
    assert len(augment.load(tmp_path / "pipeline.yaml").transforms) == len(cfg.augment.transforms)


def test_switching_optimizer_and_schedule_is_a_config_change():
    cfg = compose_config(["optimizer=sgd", "scheduler=onecycle"], root=ROOT)
    optimizer = instantiate(cfg.optimizer)(params=[torch.nn.Parameter(torch.ones(1))])
    assert isinstance(optimizer, torch.optim.SGD)
    assert isinstance(instantiate(cfg.scheduler)(optimizer, total_steps=100), torch.optim.lr_scheduler.OneCycleLR)
