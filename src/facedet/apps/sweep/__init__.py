"""Hyperparameter sweeps: Optuna picks settings, the pipeline's own stages run each trial, MLflow records it.

``facedet sweep [hparams_search=sample_optuna] [OVERRIDES...]`` composes conf/ with the search config
``conf/hparams_search/<name>.yaml`` (key ``hparams_search``) and the overrides, which apply to every
trial. Each trial is the composed config plus the values Optuna suggests for ``hparams_search.params``
(Hydra's sweep syntax: ``interval``, ``int(interval)``, ``tag(log, interval)``, ``range``, ``choice``); it
runs the stages of dvc.yaml up to train (and evaluate), in their order there, in-process with its
``paths.*`` under ``multirun/<name>/trial_<k>/``. A stage before train whose settings (its param keys
in dvc.yaml) equal an earlier trial's reuses that trial's outputs instead of running again. (DVC's
run cache cannot do this: it keys a stage on its outs' paths, and every trial's differ.)

The study lives in Optuna's storage (``hparams_search.storage``; default SQLite
``multirun/optuna.db``): the same command again resumes it until it holds ``n_trials`` complete or
pruned trials, and several processes given the same storage (a team's: PostgreSQL) share its trials:
never more than ``n_trials`` finished ones, each drawn from its own seed, one MLflow parent run
([`budget`][]); heartbeats notice a dead process: its trial is marked failed, its MLflow run KILLED,
and another takes its place. ``PruneOnValidation``
reports each epoch's validation AP to Optuna's MedianPruner and stops a trial that falls behind.

The objective is the trial's *validation* metric (``metric``, a key of ``<paths.train>/metrics.json``,
by default ``best/val_ap50``); test metrics are refused.

MLflow: one parent run per sweep (tags: the sweep's name, search space, metric; at the end the best
value, trial, run and params) and one child run per trial (the train stage's run, given the tags
``mlflow.parentRunId``, ``sweep.trial``...). The best trial's settings are written as the git-ignored
preset ``conf/experiment/<write_experiment>.yaml``: ``facedet run train experiment=best``,
``dvc exp run -S experiment=best``.

Why not hydra-optuna-sweeper: its newest release (1.3.0) pins optuna<3 (2.10.1), whose RDB storage
fails with the SQLAlchemy 2 that MLflow needs, and it needs a ``@hydra.main`` app, while the stages
here take a composed config. The search config keeps that plugin's ``params`` syntax.

Modules: [`space`][] (the search space and overrides), [`trials`][] (running a trial's stages,
reusing outputs, pruning), [`preset`][] (the written preset), [`study`][] (the search settings and
the Optuna study), [`budget`][] (the trials shared by processes), [`runs`][] (the MLflow parent
run), [`run`][] (the sweep itself).
"""

from facedet.apps.sweep.preset import preset_text
from facedet.apps.sweep.run import SweepResult, sweep
from facedet.apps.sweep.space import parse_space, split_overrides, trial_overrides
from facedet.apps.sweep.trials import PruneOnValidation

__all__ = [
    "PruneOnValidation",
    "SweepResult",
    "parse_space",
    "preset_text",
    "split_overrides",
    "sweep",
    "trial_overrides",
]
