"""Scale-out: the train stage under Lightning DDP, two processes on the CPU (gloo), one MLflow run."""

import json

from mlflow.tracking import MlflowClient
from test_resume import tiny_project, train

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
