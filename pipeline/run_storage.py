"""Dagster's SQLite instance storage as `byok-ledger run` opens it (`pipeline.instance`): the
same database files, tables and migrations as Dagster's own `DagsterSqliteStorage`, which the
UI, the daemon and every other process keep using on the same folder, but with one SQLAlchemy
engine (and its pooled connections and compiled statements) per database file for the run.

Why: Dagster's SQLite run and event-log storages create a new engine, open a new connection and
compile each statement anew for every read and write, ~600 times in a run: most of the run's
bookkeeping. Nothing else changes: each use is still its own transaction, committed at its end,
so another process (the UI) sees every event as it is written. Imported only when a run starts
(it imports Dagster's storage modules)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)


class _Engines:
    """One engine per database URL, created on first use, disposed (connections closed) at the
    end. SQLAlchemy's default pool for a SQLite file keeps a few connections open and lets any
    thread use them (the run's thread writes, the main thread reads its events)."""

    def __init__(self) -> None:
        self.by_url: dict[str, db.Engine] = {}
        self.lock = threading.Lock()

    def get(self, url: str) -> db.Engine:
        with self.lock:
            engine = self.by_url.get(url)
            if engine is None:
                engine = db.create_engine(
                    url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
                )
                self.by_url[url] = engine
            return engine

    def dispose(self) -> None:
        with self.lock:
            engines, self.by_url = list(self.by_url.values()), {}
        for engine in engines:
            engine.dispose()


class _KeptEngines:
    """What the two storages below share: their engines, one transaction per use, the engines
    closed with the storage."""

    _engines: _Engines

    @contextmanager
    def _transaction(self, url: str) -> Iterator[db.Connection]:
        with self._engines.get(url).connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self._engines.dispose()


class _EventLogStorage(_KeptEngines, SqliteEventLogStorage):
    """`SqliteEventLogStorage` (one database per run plus the cross-run index) on kept engines."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._engines = _Engines()
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.Connection]:
        # As the base class: under its lock, the shard's schema created on first use, one
        # transaction per use; only the engine outlives the use.
        with self._db_lock:
            url = self.conn_string_for_shard(shard)
            if shard not in self._initialized_dbs:
                self._initdb(self._engines.get(url))
                self._initialized_dbs.add(shard)
            with self._transaction(url) as conn:
                yield conn


class _RunStorage(_KeptEngines, SqliteRunStorage):
    """`SqliteRunStorage` (runs.db) on a kept engine."""

    def __init__(self, conn_string: str, inst_data: Any = None) -> None:
        self._engines = _Engines()
        super().__init__(conn_string, inst_data)

    @contextmanager
    def connect(self) -> Iterator[db.Connection]:
        with self._transaction(self._conn_string) as conn:
            yield conn


class RunSqliteStorage(DagsterSqliteStorage):
    """`DagsterSqliteStorage` with the run and event-log storages above (the same folders)."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self.base_dir = base_dir
        self._run_storage = _RunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = _EventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> RunSqliteStorage:  # type: ignore[override]
        return cls.from_local(inst_data=inst_data, **config_value)
