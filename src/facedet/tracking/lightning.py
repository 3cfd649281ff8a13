"""Lightning's side of tracking: a logger that writes a training's metrics into its MLflow run."""

from __future__ import annotations

from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from facedet.tracking.backend import StoreUnavailable, shown
from facedet.tracking.store import Tracker


class RunLogger(Logger):
    """Logs what the LightningModule logs (``train/loss``, ``val/ap50``, ..., per epoch) into an existing
    MLflow run through the tracker's client, on global rank 0 only (the other ranks need no run).
    Lightning's own MLflowLogger would do the same but sets MLflow's process-wide tracking URI.

    A store that stops answering is waited for as long as MLflow retries (a tracking server: about
    4 minutes by default, $MLFLOW_HTTP_REQUEST_MAX_RETRIES; a busy SQLite file: 2 minutes), the training
    paused meanwhile; past that, the training stops with one line (its checkpoints kept, so the same
    command continues it). A failed or interrupted fit is marked by [`Tracker.failed_on_error`][facedet.tracking.store.Tracker.failed_on_error],
    which knows why it ended (Lightning reports Ctrl-C and a crash alike as "failed")."""

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
        try:
            self.tracker.log_metrics(self.run_id, {key: float(value) for key, value in metrics.items()}, step or 0)
        except Exception as err:  # noqa: BLE001 - whatever the store's client raises once it gives up
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise StoreUnavailable(
                f"the MLflow store {shown(self.tracker.uri)} stopped answering during training ({first}); "
                "the checkpoints are kept: run the same command again once it answers, to continue"
            ) from None

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        """Nothing: the run was opened with the whole config as its params."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if status in ("success", "finished"):
            self.tracker.end_run(self.run_id, "FINISHED")
