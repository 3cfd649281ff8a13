"""`make ui`'s Results view: the runs table of a real MLflow store opens with the headline metrics as
columns (MLflow's saved views: an experiment tag that the UI's address names)."""

import json
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from facedet.apps import ui
from facedet.tracking import Tracker


def _view(client: MlflowClient, experiment_id: str) -> tuple[dict, dict]:
    envelope = json.loads(client.get_experiment(experiment_id).tags["mlflow.sharedViewState.facedet-results"])
    return envelope, json.loads(envelope["state"])


def test_the_results_view_selects_the_headline_metrics_as_the_first_columns(tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ui.main(["--store", store, "--port", "5007"])  # a store without runs yet: the experiment is made
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("facedet")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    envelope, state = _view(client, experiment.experiment_id)
    assert envelope["name"] == "Results" and isinstance(envelope["createdAt"], int)
    columns = [
        "metrics.`test.ap50`",
        "metrics.`test.ap50_95`",
        "metrics.`test.f1`",
        "metrics.`best.val_ap50`",
        "metrics.`best.threshold`",
    ]
    assert state["selectedColumns"] == [*columns, "attributes.`Models`"]
    assert state["columnOrder"] == columns
    assert (state["orderByKey"], state["orderByAsc"]) == ("attributes.start_time", False)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        f"runs:     http://127.0.0.1:5007/#/experiments/{experiment.experiment_id}/runs"
        "?viewStateShareKey=facedet-results&workflowType=machine_learning",
        "registry: http://127.0.0.1:5007/#/models/facedet?workflowType=machine_learning",
    ]

    # Once a run has a landmark NME, the view shows it too; writing the view again replaces it.
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.log_metric(run_id, "test.nme", 0.05)
    assert ui.save_results_view(Tracker(store)) == experiment.experiment_id
    assert _view(client, experiment.experiment_id)[1]["columnOrder"] == [*columns, "metrics.`test.nme`"]
    assert len([k for k in client.get_experiment(experiment.experiment_id).tags if "sharedViewState" in k]) == 1


def test_the_pinned_mlflow_ui_reads_saved_views_from_experiment_tags():
    """The mechanism the view relies on is in this MLflow's UI bundle (an upgrade that drops it fails here)."""
    bundle = Path(mlflow.__file__).parent / "server/js/build/static/js"
    text = "".join(path.read_text(errors="ignore") for path in bundle.glob("main.*.js"))
    assert '"mlflow.sharedViewState."' in text and '"viewStateShareKey"' in text
