"""Which process a RUNNING run belongs to, ending the runs of processes that died, and how a run ended.

A stage's run is tagged with its process (``facedet.owner``: host, pid and the process's start time,
so that a reused pid is not taken for the same process). A process killed outright (``kill -9``, a
lost machine) cannot end its run; the next stage that starts on the same host finds its runs still
RUNNING with no such process alive and marks them KILLED. Runs of other hosts are left to their own
host (a sweep's dead trials are also ended through Optuna's heartbeat).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)

OWNER_TAG = "facedet.owner"


def _started(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc) or "" where /proc is absent; None when
    there is no such process (or only its zombie)."""
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").is_file():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else fields[19]


def owner() -> str:
    """This process as an owner tag: ``host:pid:start``."""
    return f"{socket.gethostname()}:{os.getpid()}:{_started(os.getpid())}"


def dead_owner(tag: str) -> bool:
    """The tag names a process of this host that no longer runs."""
    host, _, rest = tag.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    now = _started(int(pid))
    return now is None or (bool(started) and bool(now) and now != started)


def end_dead_runs(client, experiment_id: str) -> list[str]:
    """Mark KILLED the experiment's RUNNING runs whose owner process (on this host) has died; their ids."""
    runs = client.search_runs(
        [experiment_id], f"attributes.status = 'RUNNING' and tags.`{OWNER_TAG}` LIKE '{socket.gethostname()}:%'"
    )
    ended = []
    for run in runs:
        tag = run.data.tags.get(OWNER_TAG, "")
        if dead_owner(tag):
            client.set_terminated(run.info.run_id, "KILLED")
            log.warning(
                "MLflow run %s (%s) was left RUNNING by process %s, which has ended: marked KILLED",
                *(run.info.run_name, run.info.run_id, tag.split(":")[1]),
            )
            ended.append(run.info.run_id)
    return ended


def interrupted(err: BaseException | None) -> bool:
    """Ctrl-C: a KeyboardInterrupt, or an exit raised while handling one (Lightning's)."""
    while err is not None:
        if isinstance(err, KeyboardInterrupt):
            return True
        err = err.__context__
    return False
