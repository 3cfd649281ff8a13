"""Where the store is (found one way: [`store_uri`][]) and what stands behind its URI: checked to
answer before any work, SQLite waited for while busy.

A store that cannot answer (a tracking server that is down, a PostgreSQL server that refuses, an
``mlflow.db`` that is no SQLite database) is named in one line within seconds by [`check_store`][],
instead of after MLflow's minutes of retries with a long traceback. A SQLite store that another
process holds locked is waited for (`SQLITE_BUSY_SECONDS`) rather than failing a training.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from facedet.config import ConfigError, project_root
from facedet.problems import DataError

log = logging.getLogger(__name__)

# How long a SQLite store locked by another writer is waited for before a call fails (SQLite's own
# default, 5 s, fails a training when another process writes a large batch or holds a transaction).
SQLITE_BUSY_SECONDS = 120
# How long the first contact with a server may take.
CONNECT_SECONDS = 5


class StoreUnavailable(DataError):
    """The MLflow store does not answer, or is not a store."""


def store_root(root: Path | None = None) -> Path:
    """The project whose mlflow.db records the runs. A queued or ``--temp`` ``dvc exp run`` works in a
    temporary copy (.dvc/tmp/exps/...) without the git-ignored store, and DVC names the original
    repository in $DVC_ROOT: its runs land in that store rather than in one deleted with the copy."""
    original = os.environ.get("DVC_ROOT")
    if original and (Path(original) / "dvc.yaml").is_file() and (Path(original) / "conf").is_dir():
        return Path(original).resolve()
    return root or project_root()


def store_uri(configured: str | None = None, root: Path | None = None) -> str:
    """Where MLflow records runs: ``configured`` (``tracking.uri``), else $MLFLOW_TRACKING_URI, else
    the sqlite store of [`store_root`][]."""
    if configured:
        return str(configured)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{store_root(root) / 'mlflow.db'}"


def project_or_none(root: Path | None) -> Path | None:
    try:
        return project_root(root)
    except ConfigError:
        return None


def shown(uri: str) -> str:
    """The URI with its password (``user:secret@host``) hidden, for messages and links."""
    scheme, sep, rest = uri.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return uri
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (its query left out), None for another store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def with_busy_timeout(uri: str) -> str:
    """A ``sqlite:///`` URI with SQLite's busy timeout (`SQLITE_BUSY_SECONDS`) unless it sets one;
    any other URI unchanged."""
    if sqlite_path(uri) is None or "timeout=" in uri.partition("?")[2]:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}timeout={SQLITE_BUSY_SECONDS}"


def check_store(uri: str) -> None:
    """Raise [`StoreUnavailable`][] (one line naming the store) when the store behind ``uri`` cannot
    answer: a SQLite file that is not a database (truncated, overwritten), a tracking server or a
    database server that does not answer within `CONNECT_SECONDS`. A SQLite file that does not
    exist yet is fine (MLflow creates it)."""
    database = sqlite_path(uri)
    if database is not None:
        _check_sqlite(database)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
    elif uri.split(":", 1)[0].split("+")[0] in ("postgresql", "mysql", "mssql"):
        _check_database(uri)


def _check_sqlite(database: Path) -> None:
    if not database.is_file():
        return
    try:
        with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=SQLITE_BUSY_SECONDS) as connection:
            found = [row[0] for row in connection.execute("pragma quick_check")]
    except sqlite3.OperationalError as err:
        if "locked" in str(err):
            raise StoreUnavailable(
                f"the MLflow store {database} has been locked by another process for more than "
                f"{SQLITE_BUSY_SECONDS} s: run the same command again when it is done"
            ) from None
        found = [str(err)]
    except sqlite3.DatabaseError as err:
        found = [str(err)]
    if found != ["ok"]:
        raise StoreUnavailable(
            f"the MLflow store {database} is not a readable SQLite database ({found[0][:120]}); nothing was "
            "changed: put back a good copy, or move it away to start a new store"
        )


def _check_server(uri: str) -> None:
    health = f"{uri.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(health, timeout=CONNECT_SECONDS) as answer:  # noqa: S310 - http(s) only
            answer.read()
    except urllib.error.HTTPError as err:
        raise StoreUnavailable(
            f"the MLflow tracking server {shown(uri)} answers {err.code} at /health: is it an MLflow server?"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise StoreUnavailable(
            f"the MLflow tracking server {shown(uri)} does not answer ({reason}); start it (make team) "
            "or point MLFLOW_TRACKING_URI / tracking.uri at one that answers"
        ) from None


def _check_database(uri: str) -> None:
    import sqlalchemy

    args = {"connect_timeout": CONNECT_SECONDS} if uri.startswith(("postgresql", "mysql")) else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=args)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
        engine.dispose()
    except Exception as err:  # noqa: BLE001 - whatever the driver raises: it did not answer
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise StoreUnavailable(f"the MLflow store {shown(uri)} does not answer ({first})") from None


def moved(recorded: str, here: str) -> bool:
    """The experiment's recorded mlartifacts/ is another folder's: the project was moved or copied."""
    return recorded.startswith("file://") and recorded.endswith("/mlartifacts") and recorded != here


# The tables and columns in which MLflow's SQL store records absolute artifact locations.
ARTIFACT_COLUMNS = {
    "experiments": "artifact_location",
    "runs": "artifact_uri",
    "logged_models": "artifact_location",
    "model_versions": "storage_location",
}


def relocate_artifacts(database: Path, old: str, new: str) -> None:
    """Work around mlflow/mlflow#3144 (open: MLflow records absolute artifact locations and has no API
    to change them; see also #8226): the project (mlflow.db + mlartifacts/) was moved or copied, so
    point its SQLite store's recorded locations (experiments, runs, logged models, model versions) from
    the old mlartifacts/ to the one beside the database, so that the moved project logs where it is."""
    log.info("the MLflow store %s moved: its artifact locations %s -> %s", database, old, new)
    with sqlite3.connect(database, timeout=SQLITE_BUSY_SECONDS) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
        for table, column in ARTIFACT_COLUMNS.items():
            if table in tables:
                connection.execute(
                    f"update {table} set {column} = ? || substr({column}, ?) "  # noqa: S608
                    f"where {column} = ? or {column} like ?",
                    (new, len(old) + 1, old, old + "/%"),
                )
