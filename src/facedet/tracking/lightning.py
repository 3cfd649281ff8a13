"""Lightning's side of tracking: a logger that writes a training's metrics into its MLflow run."""

from __future__ import annotations

from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from facedet.tracking.store import Tracker

# Lightning's end-of-fit status -> MLflow's run status.
_STATUS = {"success": "FINISHED", "finished": "FINISHED", "failed": "FAILED"}


class RunLogger(Logger):
    """Logs what the LightningModule logs (``train/loss``, ``val/ap50``, ..., per epoch) into an existing
    MLflow run through the tracker's client, on global rank 0 only (the other ranks need no run).
    Lightning's own MLFlowLogger would do the same but sets MLflow's process-wide tracking URI."""

    def __init__(self, tracker: Tracker, run_id: str | None) -> None:
        super().__init__()
        self.tracker, self.run_id = tracker, run_id

    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def version(self) -> str | None:
        return self.run_id

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.tracker.log_metrics(self.run_id, {key: float(value) for key, value in metrics.items()}, step or 0)

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        """Nothing: the run was opened with the whole config as its params."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if status in _STATUS:
            self.tracker.end_run(self.run_id, _STATUS[status])
