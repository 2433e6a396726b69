"""The Dagster instance of a ledger: one folder that `byok-ledger run`, `demo`, `ui` and the
schedule's daemon share, so the UI shows every run's history.

Where: `$DAGSTER_HOME` when set (a deployment's choice, e.g. a PostgreSQL `dagster.yaml`), else
`<folder of paths.duckdb>/.dagster`. A missing `dagster.yaml` there is written with the local
defaults (SQLite storage inside the folder, telemetry off, one run at a time), and
`workspace.yaml` names the code location `byok_ledger`."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from routing_core.config import LedgerConfig

LOCATION_NAME = "byok_ledger"

# Same settings as the repository's dagster.yaml (tests/pipeline/test_pipeline_defs.py keeps
# them equal); written here so an installed package needs no file from the repository.
DEFAULT_INSTANCE_YAML = """\
# Dagster instance for byok-ledger, written by byok-ledger (run, demo, ui) when missing.
# Storage: SQLite files in this folder (one machine). For PostgreSQL see docs/deploy.md.
telemetry:
  enabled: false
retention:
  schedule:
    purge_after_days: 90
# The DuckDB ledger file has one writer: one pipeline run at a time.
run_queue:
  max_concurrent_runs: 1
"""


def instance_dir(cfg: LedgerConfig) -> Path:
    """`$DAGSTER_HOME`, or `.dagster` beside the config's DuckDB file."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).resolve() if home else (cfg.duckdb_path.parent / ".dagster").resolve()


def prepare_instance(cfg: LedgerConfig) -> Path:
    """Create the instance folder and its `dagster.yaml` if missing; return the folder.
    An existing `dagster.yaml` (e.g. PostgreSQL storage) is never overwritten."""
    home = instance_dir(cfg)
    home.mkdir(parents=True, exist_ok=True)
    yaml_file = home / "dagster.yaml"
    if not yaml_file.exists():
        tmp = yaml_file.with_suffix(".yaml.tmp")
        tmp.write_text(DEFAULT_INSTANCE_YAML)
        tmp.replace(yaml_file)
    return home


# Dagster's default compute-log manager starts helper processes per run to mirror stdout and
# stderr into files; the ledger's steps print nothing (they log through Dagster's event log),
# so `byok-ledger run` turns it off unless the instance's dagster.yaml chose one.
_NO_COMPUTE_LOGS = {
    "compute_logs": {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
}


# Dagster's default storage, SQLite files in the instance folder, and the class that opens the
# same files for one run with kept engines (`pipeline.run_storage`).
_SQLITE_STORAGE = ("dagster._core.storage.sqlite_storage", "DagsterSqliteStorage")
_RUN_SQLITE_STORAGE = ("pipeline.run_storage", "RunSqliteStorage")


def open_run_instance(home: Path) -> Any:
    """The Dagster instance of `home` for one `byok-ledger run`: as its `dagster.yaml` says,
    except that stdout/stderr capture is off when the file does not configure `compute_logs`,
    and SQLite storage (the default) keeps one engine per database file for the run."""
    import dagster as dg
    import yaml
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import ConfigurableClassData

    try:
        configured = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        configured = {}  # Dagster reports a broken file itself, below
    chosen = isinstance(configured, dict) and "compute_logs" in configured
    overrides = {} if chosen else _NO_COMPUTE_LOGS
    ref = InstanceRef.from_dir(str(home), overrides=overrides)  # type: ignore[arg-type]
    storage = ref.storage_data
    if storage is not None and (storage.module_name, storage.class_name) == _SQLITE_STORAGE:
        ref = ref._replace(
            storage_data=ConfigurableClassData(*_RUN_SQLITE_STORAGE, storage.config_yaml)
        )
    return dg.DagsterInstance.from_ref(ref)


def workspace_yaml(working_directory: Path) -> str:
    """A workspace loading `pipeline.definitions` as the `byok_ledger` code location."""
    return (
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: pipeline.definitions\n"
        "      attribute: defs\n"
        f"      location_name: {LOCATION_NAME}\n"
        f"      working_directory: {_yaml_str(str(working_directory))}\n"
    )


def write_workspace(home: Path, working_directory: Path) -> Path:
    """Write `<home>/workspace.yaml` (always: it follows the installed code)."""
    path = home / "workspace.yaml"
    path.write_text(workspace_yaml(working_directory))
    return path


def _yaml_str(text: str) -> str:
    """A double-quoted YAML scalar (paths may hold spaces, colons or quotes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _SqliteKeeper:
    """While active, every SQLite database file this process connects to in WAL mode gets one
    extra idle connection, kept until the end, and commits with `synchronous=NORMAL`.

    Why: Dagster's SQLite storage opens and closes a connection for nearly every event it
    stores (no pool), and closing the last connection of a WAL database checkpoints it, fsyncs
    and deletes its `-wal` and `-shm` files: ~360 times per run, most of the run's bookkeeping
    time. With one connection kept open, a close is never the last one; the log is
    checkpointed once, when the keeper closes. (`run` also keeps its engines' connections
    open, `pipeline.run_storage`; the keeper covers the rest, e.g. the schedule storage.)
    WAL with NORMAL never corrupts a database; a power loss may drop the last committed
    events of the run in flight. Other journal modes are left alone."""

    def __init__(self) -> None:
        self.kept: dict[str, sqlite3.Connection] = {}
        self.active = False
        self.lock = threading.Lock()

    def on_connect(self, dbapi_conn: object, _record: object) -> None:
        if not self.active or not isinstance(dbapi_conn, sqlite3.Connection):
            return
        cur = dbapi_conn.cursor()
        try:
            rows = cur.execute("PRAGMA database_list").fetchall()
            path = next((r[2] for r in rows if r[1] == "main"), "")
            if not path:  # an in-memory database
                return
            if path not in self.kept:
                (mode,) = cur.execute("PRAGMA journal_mode").fetchone()
                if str(mode).lower() != "wal":
                    return
            cur.execute("PRAGMA synchronous=NORMAL")
        finally:
            cur.close()
        with self.lock:
            if path not in self.kept:
                keeper = sqlite3.connect(path, check_same_thread=False)
                # A connection joins the WAL (maps its index) on its first read: until then
                # it would not count, and every other close would still checkpoint.
                keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
                self.kept[path] = keeper

    def close_all(self) -> None:
        with self.lock:
            kept, self.kept = self.kept, {}
            self.active = False
        for conn in kept.values():
            conn.close()


_keeper = _SqliteKeeper()
_listening = False


@contextlib.contextmanager
def fast_sqlite() -> Iterator[None]:
    """Within the block, SQLite storage (Dagster's run, event and schedule databases) commits
    without an fsync per event and is not checkpointed on every close (`_SqliteKeeper`).
    Only `byok-ledger run` uses it, around its one Dagster run."""
    global _listening
    if not _listening:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "connect", _keeper.on_connect)
        _listening = True
    _keeper.active = True
    try:
        yield
    finally:
        _keeper.close_all()
