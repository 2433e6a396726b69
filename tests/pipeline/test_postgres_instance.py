"""The PostgreSQL deployment of docs/deploy.md against the real PostgreSQL on this machine
(127.0.0.1:5432, user postgres): `examples/deploy/dagster.yaml` as the instance, a daily
partition materialized through `byok-ledger run`, a queued run started by the daemon as a run
worker, the schedule turned on, the UI reading the same history, the instance migration and a
`pg_dump` backup. Runs, events and schedule state are checked in PostgreSQL itself.

Each test run creates its own database and drops only that one. When PostgreSQL is unreachable
the test FAILS: a deployment test that skips proves nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from pipeline_testkit import REPO, Ledger

from pipeline.instance import workspace_yaml

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "connect_timeout": 5}
DAY = "2026-03-02"
BIN = Path(sys.executable).parent


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"byok_ledger_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg2.connect(dbname="postgres", **PG)
    except psycopg2.OperationalError as e:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is unreachable ({e}); start it to run this test")
    admin.autocommit = True
    # docs/deploy.md's command for it.
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True, timeout=60)
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(dbname=url.rsplit("/", 1)[1], **PG) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["data"]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_run(url: str, run_id: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    status = "missing"
    while time.monotonic() < deadline:
        rows = _query(url, "SELECT status FROM runs WHERE run_id = %s", (run_id,))
        status = rows[0][0] if rows else "missing"
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1)
    return status


def test_a_partition_materialized_through_postgres(acme_day: Ledger, pg_url: str) -> None:
    home = acme_day.root / "dagster_pg"
    home.mkdir()
    shutil.copy(REPO / "examples" / "deploy" / "dagster.yaml", home / "dagster.yaml")
    workspace = home / "workspace.yaml"
    shutil.copy(REPO / "examples" / "deploy" / "workspace.yaml", workspace)
    assert workspace_yaml(REPO).split("      working_directory")[0] in workspace.read_text()
    env = {
        **{k: v for k, v in os.environ.items() if k != "BYOK_LEDGER_CONFIG"},
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": pg_url,
    }

    def sh(*cmd: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            env={**env, **extra},
            cwd=REPO,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    # 1. byok-ledger run on the PostgreSQL instance.
    run = sh(str(BIN / "byok-ledger"), "run", "--config", str(acme_day.config))
    assert f"dagster {home}" in run.stdout
    run_id = next(ln.split()[1] for ln in run.stdout.splitlines() if ln.startswith("run "))
    assert _query(pg_url, "SELECT status FROM runs WHERE run_id = %s", (run_id,)) == [("SUCCESS",)]
    materialized = dict(
        _query(
            pg_url,
            "SELECT asset_key, partition FROM event_logs WHERE run_id = %s "
            "AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
    )
    assert materialized['["staging", "requests"]'] == DAY
    assert materialized['["marts", "alerts"]'] == DAY  # alerts evaluated in the same run
    assert len(materialized) == 13
    assert not list(home.rglob("*.db"))  # no SQLite storage beside it: PostgreSQL holds it all
    assert acme_day.query("SELECT count(*) > 0 FROM marts.split_billing_daily") == [(True,)]

    # 2. The daemon starts a queued run as a run worker; the schedule is turned on.
    daemon_log = (home / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
        stdout=daemon_log,
        stderr=subprocess.STDOUT,
        env={**env, "BYOK_LEDGER_CONFIG": str(acme_day.config)},
        cwd=REPO,
    )
    try:
        tags = json.dumps(
            {
                "dagster/asset_partition_range_start": DAY,
                "dagster/asset_partition_range_end": DAY,
            }
        )
        sh(
            str(BIN / "dagster"),
            "job",
            "launch",
            "-w",
            str(workspace),
            "-j",
            "ledger_daily",
            "--tags",
            tags,
            BYOK_LEDGER_CONFIG=str(acme_day.config),
        )
        [(queued,)] = _query(
            pg_url, "SELECT run_id FROM runs WHERE run_id <> %s ORDER BY id DESC LIMIT 1", (run_id,)
        )
        status = _wait_for_run(pg_url, queued, timeout_s=240)
        assert status == "SUCCESS", (home / "daemon.log").read_text()[-3000:]
        sh(
            str(BIN / "dagster"),
            "schedule",
            "start",
            "ledger_daily_schedule",
            "-w",
            str(workspace),
            BYOK_LEDGER_CONFIG=str(acme_day.config),
        )
        listed = sh(
            str(BIN / "dagster"),
            "schedule",
            "list",
            "--running",
            "-w",
            str(workspace),
            BYOK_LEDGER_CONFIG=str(acme_day.config),
        )
        assert "ledger_daily_schedule" in listed.stdout
        states = _query(
            pg_url,
            "SELECT status, instigator_body FROM instigators WHERE instigator_type = %s",
            ("SCHEDULE",),
        )
        assert [status for status, body in states if "ledger_daily_schedule" in body] == ["RUNNING"]
    finally:
        _stop(daemon)
        daemon_log.close()
    # Both runs wrote their events to PostgreSQL.
    per_run = dict(_query(pg_url, "SELECT run_id, count(*) FROM event_logs GROUP BY run_id"))
    assert per_run[run_id] > 0 and per_run[queued] > 0

    # 3. The UI on the same instance shows both runs.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen(
        [str(BIN / "byok-ledger"), "ui", "--config", str(acme_day.config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
    )
    try:
        runs: set[str] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not {run_id, queued} <= runs:
            try:
                data = _graphql(port, "{ runsOrError { ... on Runs { results { runId } } } }")
                runs = {r["runId"] for r in data["runsOrError"]["results"]}
            except OSError:
                time.sleep(1)
        assert {run_id, queued} <= runs
    finally:
        _stop(ui)

    # 4. Upgrade step and backup from docs/deploy.md.
    sh(str(BIN / "dagster"), "instance", "migrate")
    dump = home / "dagster.sql"
    sh("pg_dump", "-h", "127.0.0.1", "-U", "postgres", "-f", str(dump), pg_url.rsplit("/", 1)[1])
    assert "CREATE TABLE public.runs" in dump.read_text()
    # The DuckDB ledger: copied while no run is in progress, the copy opens with every mart.
    backup = home / "ledger-backup.duckdb"
    shutil.copy2(acme_day.duckdb, backup)
    import duckdb

    with duckdb.connect(str(backup), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM marts.split_billing_daily").fetchone()[0] > 0
