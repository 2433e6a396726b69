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
