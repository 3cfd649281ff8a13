"""A team's servers on one machine: PostgreSQL, an S3-protocol object store and an MLflow tracking server.

``facedet team up`` (``make team``) starts, on 127.0.0.1, a throwaway PostgreSQL cluster (databases
``mlflow`` and ``optuna``), moto's S3 server (bucket ``facedet``) and an MLflow tracking server whose
runs are in PostgreSQL and whose artifacts are in that bucket (served through the tracking server:
workers need no S3 credentials for MLflow). Each server's pid and the environment a worker needs are
recorded in ``<folder>/team.json``; ``<folder>/env`` holds that environment as ``export`` lines.
``facedet team down`` (``make team-stop``) stops them by their pids and deletes what they stored (moto
keeps its objects in memory: the team is a rehearsal of a real one, whose hosts replace these).

PostgreSQL refuses to run as root: under root its processes run as the ``postgres`` user (Debian's
package makes it), which must be able to reach ``folder``.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from facedet.problems import DataError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
BUCKET = "facedet"
STATE_FILE, ENV_FILE = "team.json", "env"
DATABASES = ("mlflow", "optuna")
# moto accepts any key; these stand for a real bucket's credentials.
S3_KEYS = {"AWS_ACCESS_KEY_ID": "facedet-team", "AWS_SECRET_ACCESS_KEY": "facedet-team-secret"}
START_SECONDS = 180  # the MLflow server takes a while to start on 2 busy cores
STOP_SECONDS = 30


class TeamError(DataError):
    """A server could not be started or stopped (one line naming it)."""


@dataclass
class Ports:
    postgres: int = 5433
    s3: int = 9000
    mlflow: int = 5080


@dataclass
class Team:
    """The servers of a team recorded in ``folder``/team.json."""

    folder: Path
    ports: Ports = field(default_factory=Ports)
    password: str = ""
    pids: dict[str, int] = field(default_factory=dict)

    # --------------------------------------------------------------------------------------------
    # What a worker needs

    def database_url(self, name: str) -> str:
        return f"postgresql://facedet:{self.password}@{HOST}:{self.ports.postgres}/{name}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.ports.s3}"

    @property
    def tracking_uri(self) -> str:
        return f"http://{HOST}:{self.ports.mlflow}"

    def environment(self) -> dict[str, str]:
        """The variables a worker sets: the tracking server, the Optuna storage (give it to the sweep as
        ``hparams_search.storage=$OPTUNA_STORAGE``), the S3 endpoint and keys (DVC's remote)."""
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "OPTUNA_STORAGE": self.database_url("optuna"),
            **S3_KEYS,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint,
        }

    def dvc_remote_commands(self, name: str = "team") -> list[str]:
        """Commands that make the bucket the project's default DVC remote (in .dvc/config.local)."""
        return [
            f"dvc remote add --local --default --force {name} s3://{BUCKET}/dvc",
            f"dvc remote modify --local {name} endpointurl {self.s3_endpoint}",
        ]

    # --------------------------------------------------------------------------------------------
    # Up and down

    @classmethod
    def load(cls, folder: Path) -> Team:
        state_file = folder / STATE_FILE
        if not state_file.is_file():
            raise TeamError(f"{state_file}: no team recorded there (start one: make team)")
        state = json.loads(state_file.read_text())
        return cls(folder, Ports(**state["ports"]), state["password"], state["pids"])

    def save(self) -> None:
        state = {"ports": vars(self.ports), "password": self.password, "pids": self.pids}
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, text in (
            (STATE_FILE, json.dumps(state, indent=1) + "\n"),
            (ENV_FILE, "".join(f"export {k}={v}\n" for k, v in self.environment().items())),
        ):
            path = self.folder / name
            path.touch(mode=0o600)
            path.write_text(text)

    def up(self) -> None:
        """Start the three servers (PostgreSQL, S3, MLflow), each answering before the next starts."""
        if (self.folder / STATE_FILE).is_file():
            raise TeamError(f"{self.folder / STATE_FILE}: a team is recorded there already (stop it: make team-stop)")
        for name, port in vars(self.ports).items():
            _free(name, port)
        self.password = self.password or secrets.token_hex(12)
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            for service in ("postgres", "s3", "mlflow"):
                self.start(service)
        except BaseException:
            for service in ("mlflow", "s3", "postgres"):  # stopped; the logs kept for the error to be read
                self.stop(service)
            (self.folder / STATE_FILE).unlink(missing_ok=True)
            raise

    def start(self, service: str) -> None:
        """Start one server and wait until it answers; its pid recorded."""
        started = time.perf_counter()
        {"postgres": self._start_postgres, "s3": self._start_s3, "mlflow": self._start_mlflow}[service]()
        self.save()
        seconds = time.perf_counter() - started
        log.info(
            "%s on %s:%d (pid %d) in %.0f s", service, HOST, getattr(self.ports, service), self.pids[service], seconds
        )

    def stop(self, service: str) -> None:
        """Stop one server (by its recorded pid; PostgreSQL with pg_ctl) and wait until it has ended."""
        pid = self.pids.pop(service, None)
        if pid is None:
            return
        if service == "postgres":
            _as_postgres(
                [pg_program("pg_ctl"), "-D", str(self.folder / "postgres"), "-m", "fast", "-w", "stop"], check=False
            )
        elif alive(pid):
            os.killpg(pid, signal.SIGTERM)  # its process group: the MLflow server's workers too
        deadline = time.monotonic() + STOP_SECONDS
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.save()

    def down(self) -> None:
        """Stop every server, then delete what they stored (the cluster, the logs, team.json)."""
        for service in ("mlflow", "s3", "postgres"):
            self.stop(service)
        shutil.rmtree(self.folder, ignore_errors=True)

    # --------------------------------------------------------------------------------------------
    # The servers

    def _start_postgres(self) -> None:
        data, password_file = self.folder / "postgres", self.folder / "postgres.password"
        if os.geteuid() == 0:  # PostgreSQL refuses root: its files and processes are the postgres user's
            shutil.chown(self.folder, "postgres", "postgres")
            if subprocess.run(["test", "-w", str(self.folder)], user="postgres", group="postgres").returncode:
                raise TeamError(
                    f"{self.folder}: the postgres user cannot reach it (a folder above is private to root); "
                    "give a --folder it can reach, e.g. under /tmp"
                )
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(password_file, "postgres", "postgres")
        initdb = [pg_program("initdb"), "-D", str(data), "-U", "facedet", "--pwfile", str(password_file), "-E", "UTF8"]
        _as_postgres([*initdb, "--auth=scram-sha-256", "--no-sync"])
        password_file.unlink()
        options = f"-c listen_addresses={HOST} -c port={self.ports.postgres} -c unix_socket_directories=''"
        log_file = self.folder / "postgres.log"
        _as_postgres(
            [pg_program("pg_ctl"), "-D", str(data), "-l", str(log_file), "-w", "-t", "60", "-o", options, "start"]
        )
        self.pids["postgres"] = int((data / "postmaster.pid").read_text().split()[0])
        import psycopg

        with psycopg.connect(self.database_url("postgres"), connect_timeout=10, autocommit=True) as connection:
            for name in DATABASES:
                connection.execute(f"create database {name}")

    def _start_s3(self) -> None:
        self._spawn("s3", [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.ports.s3)])
        self._wait_http("s3", f"{self.s3_endpoint}/moto-api/")
        import boto3

        env = self.environment()
        boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        ).create_bucket(Bucket=BUCKET)

    def _start_mlflow(self) -> None:
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.database_url("mlflow")]
        command += ["--artifacts-destination", f"s3://{BUCKET}/mlartifacts", "--host", HOST]
        command += ["--port", str(self.ports.mlflow), "--workers", "1"]
        # Without its job runner (a dozen processes for GenAI evaluation jobs that runs here never use).
        self._spawn("mlflow", command, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        self._wait_http("mlflow", f"{self.tracking_uri}/health")

    def _wait_http(self, service: str, url: str) -> None:
        """Until the server answers at ``url``; an error with its log's last line when it ends or does
        not answer within `START_SECONDS`."""
        log_file, deadline = self.folder / f"{service}.log", time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and alive(self.pids[service]):
            try:
                with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - http on 127.0.0.1
                    return
            except OSError:
                time.sleep(0.5)
        last = ([line for line in log_file.read_text(errors="replace").splitlines() if line.strip()] or ["?"])[-1]
        ended = "ended" if not alive(self.pids[service]) else f"did not answer within {START_SECONDS} s"
        raise TeamError(f"{service} server {ended} ({last.strip()[:160]}; its log: {log_file})")

    def _spawn(self, service: str, command: list[str], **extra: str) -> None:
        env = {**os.environ, **self.environment(), **extra}
        env.pop("MLFLOW_TRACKING_URI")
        with open(self.folder / f"{service}.log", "ab") as log_file:
            process = subprocess.Popen(  # its own session: stopped with its children, not with this shell
                command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.pids[service] = process.pid


def pg_program(program: str) -> str:
    """A PostgreSQL program: on PATH, else in Debian's ``/usr/lib/postgresql/<newest>/bin``."""
    found = shutil.which(program) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))[::-1]), None)
    if not found:
        raise TeamError(f"{program}: not found (install PostgreSQL's server: apt-get install postgresql)")
    return found


def _as_postgres(command: list[str], check: bool = True) -> None:
    user = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
    done = subprocess.run(command, capture_output=True, text=True, **user)
    if check and done.returncode != 0:
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["?"])[-1]
        raise TeamError(f"{Path(command[0]).name} failed: {last}")


def _free(service: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise TeamError(f"port {port} on {HOST} ({service}) is in use: give another (--{service}-port)") from None


def alive(pid: int) -> bool:
    """The process runs (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
