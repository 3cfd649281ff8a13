"""`make ui`'s first step: the experiment's *Results* view in the project's MLflow store, and the UI's
addresses printed.

MLflow's runs table shows no metric column until a user picks some, and it keeps that choice in the
browser. Its saved views (the **Views** menu of the experiment page) keep one in the store: an
experiment tag ``mlflow.sharedViewState.<id>`` holding the page's state, opened by the address
``.../runs?viewStateShareKey=<id>``. The *Results* view shows the headline results as the first
columns (test AP@0.5, AP@[.5:.95], F1, validation AP@0.5 and the model's threshold; the landmark NME
where a run has one). It is written again at every ``make ui``: save views of your own under
other names.

    python -m facedet.apps.ui --store URI [--port PORT]      (make ui [PORT=...] runs it, then the server)
"""

from __future__ import annotations

import argparse
import json
import time

from facedet.tracking import MODEL_NAME, Tracker
from facedet.tracking.store import UI_TRAINING_VIEW

VIEW_ID = "facedet-results"
VIEW_NAME = "Results"
# MLflow's experiment tag of a saved view; its state is the page's search settings and UI state.
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_ID}"
HEADLINE = ("test.ap50", "test.ap50_95", "test.f1", "best.val_ap50", "best.threshold")
LANDMARKS = ("test.nme",)
# The runs table's column keys: "metrics.`NAME`", "attributes.`Models`" (the registered version).
MODELS_COLUMN = "attributes.`Models`"


def metric_column(name: str) -> str:
    return f"metrics.`{name}`"


def view_state(metrics: tuple[str, ...]) -> dict:
    """The runs page as the view opens it: newest runs first, ``metrics`` as the first columns in that
    order, then the registered model version."""
    columns = [metric_column(name) for name in metrics]
    return {
        "searchFilter": "",
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "modelVersionFilter": "All Runs",
        "datasetsFilter": [],
        "selectedColumns": [*columns, MODELS_COLUMN],
        "columnOrder": columns,
    }


def save_results_view(tracker: Tracker) -> str:
    """Write the *Results* view into the tracker's experiment (created if new); its id."""
    experiment_id = tracker.ensure_experiment()
    client = tracker.client
    with_landmarks = client.search_runs([experiment_id], "metrics.`test.nme` >= 0", max_results=1)
    state = view_state(HEADLINE + (LANDMARKS if with_landmarks else ()))
    now = int(time.time() * 1000)
    envelope = {"name": VIEW_NAME, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}
    client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(envelope))
    return experiment_id


def addresses(base: str, experiment_id: str) -> dict[str, str]:
    """The UI's pages a user starts from, in the model-training view."""
    return {
        "runs": f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_ID}&{UI_TRAINING_VIEW}",
        "registry": f"{base}/#/models/{MODEL_NAME}?{UI_TRAINING_VIEW}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facedet.apps.ui", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store", required=True, help="the MLflow store the UI serves (make ui: the project's mlflow.db)"
    )
    parser.add_argument("--port", type=int, default=5000, help="the port the UI serves on (default 5000)")
    args = parser.parse_args(argv)
    experiment_id = save_results_view(Tracker(args.store))
    for page, address in addresses(f"http://127.0.0.1:{args.port}", experiment_id).items():
        print(f"{page + ':':10}{address}")


if __name__ == "__main__":
    main()
