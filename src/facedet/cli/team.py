"""``facedet team``: a team's servers (PostgreSQL, S3, MLflow) on this machine, up and down."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from facedet.apps.team import Ports

    p = sub.add_parser(
        "team",
        help="start or stop a team's servers on 127.0.0.1: PostgreSQL, an S3 server, MLflow (make team)",
        description="A rehearsal of a team's setup on one machine (docs/scaling.md): `up` starts a PostgreSQL "
        "cluster (databases mlflow and optuna), moto's S3 server (bucket facedet) and an MLflow tracking "
        "server on them, on 127.0.0.1, and prints the environment a worker needs (also in FOLDER/env); "
        "`down` stops them by their recorded pids and deletes what they stored; `env` prints the "
        'environment of the running team (eval "$(facedet team env)").',
    )
    p.add_argument("action", choices=("up", "down", "env"))
    p.add_argument("--folder", type=Path, default=Path(".team"), help="where the team's state, data and logs go")
    for name, port in vars(Ports()).items():
        p.add_argument(f"--{name}-port", type=int, default=port, help=f"{name}'s port (default {port})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from facedet.apps.team import Ports, Team

    folder = args.folder.resolve()
    if args.action == "up":
        team = Team(folder, Ports(args.postgres_port, args.s3_port, args.mlflow_port))
        team.up()
        print(
            f"team up: MLflow {team.tracking_uri} (its UI too), PostgreSQL {team.ports.postgres}, S3 {team.s3_endpoint}"
        )
        print(f"a worker's environment (source {folder / 'env'}):")
        print("".join(f"  export {k}={v}\n" for k, v in team.environment().items()), end="")
        print("sweep workers: facedet sweep hparams_search.storage=$OPTUNA_STORAGE ...")
        print("DVC remote: " + " && ".join(team.dvc_remote_commands()))
        print("stop it (and delete what it stored): make team-stop")
    elif args.action == "down":
        Team.load(folder).down()
        print(f"team down: its servers stopped, {folder} deleted")
    else:
        print("".join(f"export {k}={v}\n" for k, v in Team.load(folder).environment().items()), end="")
