"""Hyperparameter sweeps (facedet.apps.sweep): a real two-trial study, the search space, the preset, pruning."""

import json
import re
import shutil
from pathlib import Path

import optuna.distributions as D
import pytest
import yaml
from conftest import ROOT
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from facedet.apps.sample import SampleSettings, generate
from facedet.apps.sweep import parse_space, preset_text, split_overrides, sweep, trial_overrides
from facedet.config import ConfigError, compose_config
from facedet.pipeline import run_stage

TINY_SEARCH = """\
name: tiny
metric: best/val_ap50
direction: maximize
n_trials: 2
storage: null
prune: true
prune_warmup_epochs: 2
seed: 0
startup_trials: 2
evaluate: false
write_experiment: best
write_min: null
params:
  train.lr: tag(log, interval(0.0005, 0.005))
  loss.box_weight: choice(0.5, 1.0)
  callbacks: choice(default, ema)
  model.neck_width: 16
"""


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(name, raising=False)


def test_two_trial_sweep_is_one_parent_run_with_a_child_per_trial_and_writes_the_best_preset(
    tmp_path, clean_env, caplog
):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("best.yaml"))
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    (project / "conf/hparams_search/tiny.yaml").write_text(TINY_SEARCH)
    generate(project / "data", SampleSettings(n_images=16))

    # train.val_every=2 with experiment=quick's one epoch: the last epoch is validated all the same.
    overrides = ["hparams_search=tiny", "experiment=quick", "train.batch_size=8", "train.val_every=2"]

    def interrupted(name, cfg, **context):  # Ctrl-C as trial 1 starts training
        if name == "train" and "trial_1" in cfg.paths.train:
            raise KeyboardInterrupt
        run_stage(name, cfg, **context)

    with pytest.raises(KeyboardInterrupt):
        sweep(interrupted, overrides, root=project)
    # The same command again resumes the study (multirun/optuna.db): one more trial makes the planned two.
    with caplog.at_level("INFO", logger="facedet.apps.sweep"):
        result = sweep(run_stage, overrides, root=project)
    # The log shows a sampled rate as 4 significant digits, not 17.
    trial_line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("trial 2: "))
    shown = re.search(r"train\.lr=(\S+)", trial_line).group(1)
    assert 0 < len(shown.split("e")[0].replace(".", "").lstrip("0")) <= 4, trial_line
    assert result.storage == f"sqlite:///{project / 'multirun/optuna.db'}"
    assert [(t["trial"], t["state"]) for t in result.trials] == [(0, "COMPLETE"), (2, "COMPLETE")]

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    exp_id = client.get_experiment_by_name("facedet").experiment_id
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep.name"] == "tiny" and "train.lr" in json.loads(parent.data.tags["sweep.search_space"])
    children = client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert len(children) == 2 and {c.data.tags["sweep.trial"] for c in children} == {"0", "2"}
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.info.run_id for c in children} == {t["run_id"] for t in result.trials}

    # The objective is the validation AP@0.5 of the best child (no evaluate stage ran: no test metric exists).
    by_id = {c.info.run_id: c for c in children}
    val = {run_id: c.data.metrics["best.val_ap50"] for run_id, c in by_id.items()}  # MLflow: dots, single values
    assert not any(k.startswith("test") for c in children for k in c.data.metrics)
    assert result.best_value == max(val.values()) == val[result.best_run_id]
    assert parent.data.metrics["best.val_ap50"] == result.best_value
    assert parent.data.tags["sweep.best_run_id"] == result.best_run_id
    trial_metrics = json.loads(
        (project / f"multirun/tiny/trial_{result.best_trial}/results/train/metrics.json").read_text()
    )
    assert trial_metrics["best/val_ap50"] == result.best_value
    best_child = by_id[result.best_run_id].data.params
    assert float(best_child["train.lr"]) == result.best_params["train.lr"]

    # Settings collect/labels/augment depend on did not change: trial 2 (after the resume) used trial 0's outputs.
    trial_2 = OmegaConf.load(project / "multirun/tiny/trial_2/config.yaml")
    for stage in ("collect", "labels", "augment"):
        assert Path(trial_2.paths[stage]) == project / "multirun/tiny/trial_0/results" / stage
    assert not (project / "multirun/tiny/trial_2/results/collect").exists()
    # Trials are registry versions only when they beat the champion: the first always, the second if better.
    first, second = result.trials
    registered = {v.run_id for v in client.search_model_versions("name = 'facedet'")}
    assert registered == {first["run_id"]} | ({second["run_id"]} if second["value"] > first["value"] else set())
    assert client.get_model_version_by_alias("facedet", "champion").run_id == result.best_run_id

    # The preset holds the winner's searched values (from the search space) and the sweep's overrides.
    preset = project / "conf/experiment/best.yaml"
    assert preset.read_text().startswith("# @package _global_\n")
    written = yaml.safe_load(preset.read_text())
    assert 0.0005 <= written["train"]["lr"] <= 0.005 and written["loss"]["box_weight"] in (0.5, 1.0)
    assert written["train"]["lr"] == result.best_params["train.lr"]
    cfg = compose_config(["experiment=best"], root=project)
    assert (
        cfg.train.lr == result.best_params["train.lr"] and cfg.loss.box_weight == result.best_params["loss.box_weight"]
    )
    assert (cfg.train.max_epochs, cfg.train.batch_size, cfg.model.neck_width, cfg.augment.copies) == (1, 8, 16, 0)
    # A searched config group (callbacks=ema) is selected in the preset's defaults, like an override.
    assert {"override /callbacks": result.best_params["callbacks"]} in written["defaults"]
    assert ("ema" in cfg.callbacks) == (result.best_params["callbacks"] == "ema")

    # A best value below hparams_search.write_min writes no preset (the study is complete: no new trial).
    preset.unlink()
    again = sweep(run_stage, [*overrides, "hparams_search.write_min=1.5"], root=project)
    assert again.experiment_file is None and not preset.exists()
    assert [t["trial"] for t in again.trials] == [0, 2]


def test_search_space_syntax_and_the_shipped_search_composes():
    spec = compose_config(["hparams_search=sample_optuna"], root=ROOT).hparams_search
    space, fixed = parse_space(OmegaConf.to_container(spec.params))
    assert space["train.lr"] == D.FloatDistribution(0.0001, 0.003, log=True)
    assert space["callbacks"] == D.CategoricalDistribution(["default", "ema"]) and fixed == {}
    assert "augment.copies" not in space  # the recipe augments online
    assert spec.metric == "best/val_ap50"
    # The current recipe (the defaults of conf/) lies inside the space: a search around it.
    recipe = compose_config([], root=ROOT)
    for key, dist in space.items():
        value = OmegaConf.select(recipe, key) if key != "callbacks" else "default"
        inside = (
            value in dist.choices if isinstance(dist, D.CategoricalDistribution) else dist.low <= value <= dist.high
        )
        assert inside, (key, value, dist)
    for pick in (0, -1):  # every searched key exists and both ends of each range pass validation
        values = {
            k: d.choices[pick] if isinstance(d, D.CategoricalDistribution) else (d.low, d.high)[pick]
            for k, d in space.items()
        }
        cfg = compose_config(trial_overrides(values, ROOT / "conf"), root=ROOT)
        crops = cfg.augment.transforms[0]
        assert crops["_target_"].endswith("OneOf") and len(crops.transforms) == 3
        assert crops.transforms[1].p == values["augment.transforms.0.transforms.1.p"]
        assert cfg.augment.transforms[2]["_target_"].endswith("RandomBrightnessContrast")
        assert ("ema" in cfg.callbacks) == (values["callbacks"] == "ema")

    space, fixed = parse_space({"a": "int(interval(1, 4))", "b": "range(0.1, 0.5, 0.2)", "c": "3", "d": "choice(x, 2)"})
    assert space["a"] == D.IntDistribution(1, 4) and space["b"] == D.FloatDistribution(0.1, 0.3, step=0.2)
    assert fixed == {"c": 3} and space["d"].choices == ("x", 2)
    with pytest.raises(ConfigError, match="hparams_search.params.a"):
        parse_space({"a": "interval(2, 1)"})
    assert split_overrides(["train.lr=1", "hparams_search.n_trials=2"]) == (
        ["hparams_search=sample_optuna", "hparams_search.n_trials=2"],
        ["train.lr=1"],
    )


def test_a_sweep_never_optimises_a_test_metric(clean_env):
    with pytest.raises(ConfigError, match="validation metric"):
        sweep(run_stage, ["hparams_search.metric=test/ap50"], root=ROOT)


def test_preset_selects_groups_in_its_defaults_and_sets_only_changed_values(tmp_path):
    best = compose_config(["split=grouped", "train.lr=0.01", "seed=7"], root=ROOT)
    text = preset_text(best, ["split=grouped", "train.lr=0.01"], ROOT, "a header\nof two lines")
    assert text.startswith("# @package _global_\n# a header\n# of two lines\n")
    body = yaml.safe_load(text)
    assert body == {"defaults": [{"override /split": "grouped"}], "train": {"lr": 0.01}, "seed": 7}
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf, ignore=shutil.ignore_patterns("best.yaml"))
    (conf / "experiment/found.yaml").write_text(text)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    again = compose_config(["experiment=found"], root=tmp_path)
    assert OmegaConf.to_container(again) == OmegaConf.to_container(best)


def test_the_pruning_callback_stops_a_real_lightning_training_after_a_bad_epoch(tmp_path):
    import optuna
    import pytorch_lightning as pl
    import torch

    from facedet.apps.sweep import PruneOnValidation

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            return self.layer(batch[0]).pow(2).mean()

        def validation_step(self, batch, _):
            self.log("val/ap50", 0.1)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(4, 2)), batch_size=2)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    trial = study.ask()
    pruning = PruneOnValidation(trial, "val/ap50")
    trainer = pl.Trainer(
        max_epochs=5,
        callbacks=[pruning],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Tiny(), data, data)
    assert pruning.pruned_at == 1 and trainer.current_epoch == 1  # one epoch of five, then stopped
    assert trial.should_prune() and pruning.last == pytest.approx(0.1)


def test_the_written_preset_leaves_dvc_status_clean(tmp_path):
    """conf/experiment/best.yaml is the sweep's output, git-ignored and DVC-ignored: the validate
    stage (which depends on conf/) does not rerun because a sweep wrote it."""
    from test_config import _dvc_project

    project, sh = _dvc_project(tmp_path)
    sh("dvc", "repro", "validate")
    assert "up to date" in sh("dvc", "status", "validate").stdout
    (project / "conf/experiment/best.yaml").write_text("# @package _global_\ntrain:\n  lr: 0.001\n")
    assert "up to date" in sh("dvc", "status", "validate").stdout
