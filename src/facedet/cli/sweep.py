"""``facedet sweep``: hyperparameter search with Optuna: one MLflow parent run, a child per trial."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="hyperparameter search with Optuna: one MLflow parent run, a child per trial",
        description="Search the space of conf/hparams_search/NAME.yaml (default sample_optuna) "
        "with Optuna: every trial runs the pipeline stages in multirun/NAME/trial_K/ "
        "and is scored on its VALIDATION metric (best/val_ap50); one MLflow parent "
        "run, one child run per trial; the best settings are written to "
        "conf/experiment/best.yaml (git-ignored; use: experiment=best). The study is "
        "kept in Optuna's storage (hparams_search.storage, default multirun/optuna.db): "
        "the same command again resumes it; several processes sharing the storage "
        "share its trials.",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        help="hparams_search=NAME, hparams_search.KEY=VALUE (e.g. hparams_search.n_trials=4), "
        "and Hydra overrides for every trial (e.g. train.max_epochs=3 or experiment=quick)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet.apps.sweep import sweep
    from facedet.pipeline import run_stage

    result = sweep(run_stage, args.overrides)
    print(
        f"sweep {result.name}: {len(result.trials)} trials in {result.seconds / 60:.1f} min; best trial "
        f"{result.best_trial}: {result.metric} = {result.best_value:.4f} with "
        + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
    )
    print(f"MLflow: parent run {result.parent_link}, best child run {result.best_run_id}")
    if result.experiment_file:
        print(
            f"preset: {result.experiment_file} -> facedet run train experiment={result.experiment_file.stem}, "
            f"dvc exp run -S experiment={result.experiment_file.stem}"
        )
