"""Scale-out: the train stage under Lightning DDP, two processes on the CPU (gloo), one MLflow run."""

import json
import socket
import subprocess

import pytest
from mlflow.tracking import MlflowClient
from test_resume import TINY, facedet_env, tiny_project, train

from facedet.model import weights


def test_two_process_ddp_on_the_cpu_trains_once_into_one_mlflow_run(tmp_path):
    project = tiny_project(tmp_path / "p")
    done = train(project, "train=ddp", "train.accelerator=cpu", "train.devices=2", "train.max_epochs=1")
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in done.stderr  # the second process really ran

    model = project / "results/train/model.safetensors"
    assert model.stat().st_size > 0 and 0 <= weights.read_metadata(model)["threshold"] <= 1
    run_id = json.loads((project / "results/train/run.json").read_text())["run_id"]
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("facedet").experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]  # created once, by rank 0
    assert runs[0].info.status == "FINISHED" and "val/ap50" in runs[0].data.metrics
    assert len(client.get_metric_history(run_id, "val/ap50")) == 1  # logged by one process only
    assert json.loads((project / "results/train/metrics.json").read_text())["registry/version"] == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_one_machine_train_once_into_one_mlflow_run(tmp_path):
    """`train.num_nodes=2`, each "node" a launch of its own with the variables a cluster sets
    (MASTER_ADDR, MASTER_PORT, NODE_RANK), gloo on the CPU, one shared results/ folder."""
    project = tiny_project(tmp_path / "p")
    command = ["facedet", "run", "train", *TINY, "train=ddp", "train.accelerator=cpu", "train.devices=1"]
    command += ["train.num_nodes=2", "train.max_epochs=1"]
    cluster = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    nodes = [
        subprocess.Popen(
            command,
            cwd=project,
            env={**facedet_env(), **cluster, "NODE_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1]  # the second node really joined

    metrics = json.loads((project / "results/train/metrics.json").read_text())
    run_id = json.loads((project / "results/train/run.json").read_text())["run_id"]
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("facedet").experiment_id])
    assert [r.info.run_id for r in runs] == [run_id] and runs[0].info.status == "FINISHED"  # one run, rank 0's
    assert len(client.get_metric_history(run_id, "val/ap50")) == 1
    assert metrics["registry/version"] == 1 and runs[0].data.metrics["best.val_ap50"] == metrics["best/val_ap50"]
