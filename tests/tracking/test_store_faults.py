"""The store's faults, in a real SQLite store: one that cannot answer is named in one line within
seconds, a busy one is waited for, runs of processes that died or were interrupted are not left RUNNING."""

import os
import socket
import sqlite3
import subprocess
import threading
import time

import pytest
import pytorch_lightning as pl
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from facedet.tracking import StoreUnavailable, Tracker, resolve_model_uri
from facedet.tracking.lightning import RunLogger
from facedet.tracking.owners import OWNER_TAG, _started

CFG = OmegaConf.create({"tracking": {"uri": None, "experiment": "facedet"}, "seed": 0})


@pytest.fixture
def store(tmp_path, monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "conf").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "mlflow.db"


def test_an_unreachable_server_is_named_in_one_line_within_seconds(store, monkeypatch):
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable) as raised:
        Tracker.for_config(CFG)
    assert time.perf_counter() - started < 10
    message = str(raised.value)
    assert "\n" not in message and f"server http://127.0.0.1:{port} does not answer" in message
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
        resolve_model_uri("models:/facedet@champion")


def test_a_truncated_store_is_named_in_one_line_and_left_as_it_is(store):
    tracker = Tracker(f"sqlite:///{store}")
    for _ in range(3):
        tracker.start_run(CFG)
    whole = store.read_bytes()
    store.write_bytes(whole[: len(whole) // 2])
    for attempt in (lambda: Tracker.for_config(CFG), lambda: resolve_model_uri("models:/facedet@champion")):
        with pytest.raises(StoreUnavailable) as raised:
            attempt()
        message = str(raised.value)
        assert "\n" not in message and f"the MLflow store {store} is not a readable SQLite database" in message
    assert store.read_bytes() == whole[: len(whole) // 2]


def test_a_busy_store_is_waited_for(store):
    """Another writer holding mlflow.db for longer than SQLite's default 5 s: the logging call waits."""
    tracker = Tracker(f"sqlite:///{store}")
    run_id = tracker.start_run(CFG)
    locked = threading.Event()

    def hold() -> None:
        with sqlite3.connect(store, isolation_level=None) as other:
            other.execute("begin exclusive")
            locked.set()
            time.sleep(6.5)
            other.execute("commit")

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait()
    started = time.perf_counter()
    tracker.log_metrics(run_id, {"val/ap50": 0.5}, step=1)
    holder.join()
    assert time.perf_counter() - started > 5
    assert MlflowClient(f"sqlite:///{store}").get_run(run_id).data.metrics == {"val/ap50": 0.5}


def test_runs_left_running_by_a_process_that_died_are_marked_killed_at_the_next_start(store):
    tracker = Tracker(f"sqlite:///{store}")
    orphan, mine, reused = (tracker.start_run(CFG) for _ in range(3))
    child = subprocess.Popen(["sleep", "60"])
    tracker.set_tags(orphan, {OWNER_TAG: f"{socket.gethostname()}:{child.pid}:{_started(child.pid)}"})
    child.kill()
    child.wait()
    # A live pid (this one) whose start time differs: the owner died and its pid was given to another process.
    tracker.set_tags(reused, {OWNER_TAG: f"{socket.gethostname()}:{os.getpid()}:{int(_started(os.getpid())) + 1}"})
    tracker.start_run(CFG)
    client = MlflowClient(f"sqlite:///{store}")
    assert client.get_run(orphan).info.status == "KILLED"
    assert client.get_run(reused).info.status == "KILLED"
    assert client.get_run(mine).info.status == "RUNNING"  # this process is alive


class _Tiny(pl.LightningModule):
    def __init__(self, interrupt_at: int | None = None):
        super().__init__()
        self.layer, self.interrupt_at = torch.nn.Linear(2, 1), interrupt_at

    def training_step(self, batch, batch_idx):
        if batch_idx == self.interrupt_at:
            raise KeyboardInterrupt  # what Ctrl-C raises in the training loop
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize(("interrupt_at", "status"), [(1, "KILLED"), (None, "FINISHED")])
def test_ctrl_c_in_a_lightning_training_marks_its_run_killed(store, tmp_path, interrupt_at, status):
    tracker = Tracker(f"sqlite:///{store}")
    run_id = tracker.start_run(CFG)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(8, 2)), batch_size=2)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=RunLogger(tracker, run_id),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    ended = None
    try:
        with tracker.failed_on_error(run_id):
            trainer.fit(_Tiny(interrupt_at), data)
    except SystemExit as err:  # Lightning turns Ctrl-C into sys.exit(1)
        ended = err
    assert (ended is not None) == (interrupt_at is not None)
    run = MlflowClient(f"sqlite:///{store}").get_run(run_id)
    assert run.info.status == status
    assert ("train/loss" in run.data.metrics) == (interrupt_at is None)
