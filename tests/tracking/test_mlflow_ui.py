"""`make ui`: the MLflow server on this project's kind of store answers with the runs it holds."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_mlflow_ui_serves_the_runs_of_a_sqlite_store(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(store)
    experiment = client.create_experiment("facedet", artifact_location=(tmp_path / "mlartifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    client.log_param(run_id, "train.max_epochs", "3")
    client.log_metric(run_id, "val/ap50", 0.75, step=2)
    client.set_terminated(run_id)

    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [
            str(mlflow_cli),
            "ui",
            "--backend-store-uri",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        start_new_session=True,
    )  # its own process group: the server's workers too
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"mlflow ui exited: {server.stderr.read().decode()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "mlflow ui did not answer in 90 s"
            time.sleep(0.5)

        run = _get(f"{base}/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
        assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"train.max_epochs": "3"}
        assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"val/ap50": 0.75}
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            method="POST",
            data=json.dumps({"experiment_ids": [experiment]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            found = json.loads(response.read())["runs"]
        assert [r["info"]["run_id"] for r in found] == [run_id]
        assert mlflow.__version__  # the server is the pinned MLflow of this venv
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the group this test started (mlflow ui and its uvicorn)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_make_ui_on_a_busy_port_fails_in_one_line():
    from conftest import ROOT

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            ["make", "-s", "ui", f"PORT={port}"], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    assert done.returncode != 0
    assert (
        done.stderr.splitlines()[0]
        == f"make ui: port {port} on 127.0.0.1 is in use (another make ui?): make ui PORT=5001"
    )
