"""`pipeline.instance.fast_sqlite`: inside the block, WAL databases commit with
synchronous=NORMAL and keep one idle connection open (so Dagster's per-event connections do not
checkpoint on close); other journal modes and everything after the block are untouched, and
committed rows are all there for another process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipeline.instance import _keeper, fast_sqlite


def _engine(path: Path, wal: bool) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
    with engine.connect() as c:
        c.execute(sa.text(f"PRAGMA journal_mode={'WAL' if wal else 'DELETE'}"))
        c.execute(sa.text("CREATE TABLE IF NOT EXISTS t (i INTEGER)"))
        c.commit()
    return engine


def _synchronous(engine: sa.Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(sa.text("PRAGMA synchronous")).scalar_one())


def test_wal_databases_relax_sync_and_stay_open_only_inside_the_block(tmp_path: Path):
    wal = _engine(tmp_path / "wal.db", wal=True)
    plain = _engine(tmp_path / "plain.db", wal=False)
    assert _synchronous(wal) == 2 and _synchronous(plain) == 2  # FULL by default
    with fast_sqlite():
        assert _synchronous(wal) == 1  # NORMAL
        assert _synchronous(plain) == 2
        for i in range(50):
            with wal.connect() as c:
                c.execute(sa.text("INSERT INTO t VALUES (:i)"), {"i": i})
                c.commit()
        assert list(_keeper.kept) == [str(tmp_path / "wal.db")]
        # The write-ahead log was not checkpointed away on each close.
        assert (tmp_path / "wal.db-wal").exists()
        # Another process reads every committed row meanwhile.
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("
                "'SELECT count(*), sum(i) FROM t').fetchone())",
                str(tmp_path / "wal.db"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.strip() == "(50, 1225)", out.stderr
    assert _keeper.kept == {}
    assert _synchronous(wal) == 2
    # The last close checkpointed the log into the database file.
    assert not (tmp_path / "wal.db-wal").exists()
    with sqlite3.connect(tmp_path / "wal.db") as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (50,)


def test_the_keepers_close_even_when_the_block_raises(tmp_path: Path):
    wal = _engine(tmp_path / "wal.db", wal=True)
    try:
        with fast_sqlite():
            assert _synchronous(wal) == 1
            assert _keeper.kept
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert _keeper.kept == {} and not _keeper.active


def test_run_instances_capture_no_stdout_unless_the_instance_configures_it(tmp_path: Path):
    from pipeline.instance import DEFAULT_INSTANCE_YAML, open_run_instance

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "dagster.yaml").write_text(DEFAULT_INSTANCE_YAML)
    with open_run_instance(plain) as instance:
        assert type(instance.compute_log_manager).__name__ == "NoOpComputeLogManager"
        assert instance.root_directory == str(plain)
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    (chosen / "dagster.yaml").write_text(
        DEFAULT_INSTANCE_YAML
        + "compute_logs:\n"
        + "  module: dagster._core.storage.local_compute_log_manager\n"
        + "  class: LocalComputeLogManager\n"
        + f"  config:\n    base_dir: {tmp_path / 'logs'}\n"
    )
    with open_run_instance(chosen) as instance:
        assert type(instance.compute_log_manager).__name__ == "LocalComputeLogManager"


def test_run_instances_keep_one_engine_per_database_in_dagsters_own_files(tmp_path: Path):
    """`run` opens the default SQLite storage with one engine per database file; what it writes
    is where Dagster's own storage (the UI, the daemon) reads it: the run, its events and the
    asset's materialization."""
    import dagster as dg

    from pipeline.instance import DEFAULT_INSTANCE_YAML, open_run_instance

    (tmp_path / "dagster.yaml").write_text(DEFAULT_INSTANCE_YAML)

    @dg.asset
    def one() -> int:
        return 1

    with fast_sqlite(), open_run_instance(tmp_path) as instance:
        result = dg.materialize([one], instance=instance)
        assert result.success
        engines = instance.event_log_storage._engines
        # The run's own event database and the cross-run index: two engines for ~40 uses.
        assert len(engines.by_url) == 2
        assert len(instance.run_storage._engines.by_url) == 1
    assert engines.by_url == {}  # disposed with the instance
    with dg.DagsterInstance.from_config(str(tmp_path)) as plain:
        assert type(plain.event_log_storage).__name__ == "SqliteEventLogStorage"
        run = plain.get_run_by_id(result.run_id)
        assert run is not None and run.is_success
        assert plain.get_latest_materialization_event(dg.AssetKey("one")) is not None
        kinds = {
            r.event_log_entry.dagster_event_type
            for r in plain.get_records_for_run(result.run_id).records
            if r.event_log_entry.dagster_event_type
        }
        assert dg.DagsterEventType.RUN_SUCCESS in kinds
