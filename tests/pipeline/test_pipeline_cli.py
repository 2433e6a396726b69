"""`byok-ledger run` end to end, in a fresh process as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal

from pipeline_testkit import FIXTURES, REPO, Ledger, request


def _run(led: Ledger, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DAGSTER_HOME",
            "BYOK_LEDGER_CONFIG",
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS",
        )
    }
    return subprocess.run(
        [sys.executable, "-m", "byok_ledger.cli", "run", "--config", str(led.config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def test_run_defaults_to_the_days_in_the_logs_and_prints_a_summary(acme_day: Ledger):
    proc = _run(acme_day)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "1 day(s) 2026-03-02..2026-03-02" in out
    assert "succeeded" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("2026-03-02"))
    # requests, provider billed, fee, credits, total, unattributed, status
    assert line.split()[:8] == [
        "2026-03-02",
        "8",
        "7.91",
        "0.39",
        "0.35",
        "8.65",
        "0.11",
        "invoiced",
    ]
    # The Dagster instance defaults to a folder beside the DuckDB file, telemetry off.
    home = acme_day.duckdb.parent / ".dagster"
    assert "enabled: false" in (home / "dagster.yaml").read_text()
    assert acme_day.query("SELECT sum(total_usd) FROM marts.split_billing_daily") == [
        (Decimal("8.647067"),)
    ]
    # The run evaluated alerts too: budget status is in the same DuckDB file.
    assert acme_day.query("SELECT count(*) > 0 FROM marts.budget_status") == [(True,)]
    # Idempotent: a second run leaves the same marts.
    before = _stable_snapshot(acme_day)
    assert _run(acme_day, "--start", "2026-03-02", "--end", "2026-03-02").returncode == 0
    assert _stable_snapshot(acme_day) == before


def _stable_snapshot(led: Ledger) -> dict[str, list[tuple]]:
    """Every mart, without the alert bookkeeping a re-run legitimately moves: when budgets were
    evaluated, and delivery attempts to the example's (unreachable) webhook, retried each run."""
    snap = led.snapshot()
    snap["marts.budget_status"] = led.query(
        "SELECT * EXCLUDE (evaluated_at) FROM marts.budget_status ORDER BY ALL"
    )
    snap["marts.alerts"] = led.query(
        "SELECT * EXCLUDE (attempts, last_error, delivered_at) FROM marts.alerts ORDER BY ALL"
    )
    return snap


def test_range_run_records_every_day_but_plans_once_per_asset(acme_day: Ledger):
    """Each asset's days show as materialized partitions in the Dagster UI, while the run plans
    each asset once for the whole range (one event, not one per day: SQLite writes each event
    as its own transaction)."""
    import dagster as dg

    proc = _run(acme_day, "--start", "2026-03-01", "--end", "2026-03-03")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    home = acme_day.duckdb.parent / ".dagster"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        records = instance.get_records_for_run(run.run_id).records
        planned = [
            r.event_log_entry.dagster_event.asset_key.to_user_string()
            for r in records
            if r.event_log_entry.dagster_event_type
            == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ]
        materialized = [
            r
            for r in records
            if r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        ]
        days = {"2026-03-01", "2026-03-02", "2026-03-03"}
        # 11 ledger assets and the 2 alert assets, in the same run.
        assert len(planned) == len(set(planned)) == 13
        assert len(materialized) == 13 * 3
        for key in planned:
            asset = dg.AssetKey.from_user_string(key)
            assert instance.get_materialized_partitions(asset) == days, key
        # Each day's materialization counts that day's rows (only Mar 2 has logs).
        counts = {
            (
                r.event_log_entry.dagster_event.asset_key.to_user_string(),
                r.event_log_entry.dagster_event.partition,
            ): r.asset_materialization.metadata["dagster/row_count"].value
            for r in materialized
        }
        assert [counts[("staging/requests", d)] for d in sorted(days)] == [0, 8, 0]
        split_rows = dict(
            acme_day.query(
                "SELECT strftime(day, '%Y-%m-%d'), count(*) FROM marts.split_billing_daily "
                "GROUP BY ALL"
            )
        )
        assert split_rows["2026-03-02"] > 0
        for d in days:
            assert counts[("marts/split_billing_daily", d)] == split_rows.get(d, 0), d


def test_run_exits_non_zero_when_a_blocking_check_fails(ledger: Ledger):
    dest = ledger.logs / "requests" / "dt=2026-03-02" / "router-a.jsonl"
    dest.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "logs" / "requests_with_bad_lines.jsonl", dest)
    proc = _run(ledger)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        "check rejected_rate_under_threshold on staging/requests failed (BLOCKING)" in proc.stdout
    )
    assert "router-a.jsonl` line 2" in proc.stdout
    assert "FAILED  staging__requests_rejected_rate_under_threshold" in proc.stdout
    # The check runs in its asset's step: that step fails after the load, nothing downstream runs.
    assert "FAILED  staging__requests: 1 blocking asset check failed" in proc.stdout
    assert "intermediate__request_groups" not in proc.stdout


def test_a_failed_warn_check_is_not_printed_as_ok(acme_day: Ledger):
    # Bedrock bills $5 more for one line than the logs explain: over_billed, a WARN check.
    csv = acme_day.invoices / "bedrock" / "focus_2026-03.csv"
    lines = csv.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(",0.60,0.60,0.60,", ",5.60,5.60,5.60,", 1)
    csv.write_text("".join(lines))
    proc = _run(acme_day)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check variance_within_tolerance on marts/reconciliation_daily failed (WARN)" in (
        proc.stdout
    )
    step = next(ln for ln in proc.stdout.splitlines() if "variance_within_tolerance" in ln)
    assert step.split()[1:3] == ["warn", "marts__reconciliation_daily_variance_within_tolerance"]


def test_run_reports_config_errors_with_exit_2(ledger: Ledger):
    ledger.config.write_text(
        ledger.config.read_text().replace("rerun_window_days: 7", "rerun_window_dayz: 7")
    )
    proc = _run(ledger)
    assert proc.returncode == 2
    assert "rerun_window_dayz" in proc.stderr


def test_run_without_logs_says_where_it_looked(ledger: Ledger):
    proc = _run(ledger)
    assert proc.returncode == 2
    assert f"no request logs under {ledger.logs}" in proc.stderr


def test_summary_money_has_no_negative_zero():
    from pipeline.cli import _money

    assert [_money(v) for v in (None, Decimal("-0.0004"), Decimal("-0.76"), Decimal("1234.5"))] == [
        "-",
        "0.00",
        "-0.76",
        "1,234.50",
    ]


def test_run_refuses_days_before_pipeline_start_date_and_bad_days(acme_day: Ledger):
    text = acme_day.config.read_text()
    acme_day.config.write_text(text.replace("pipeline:\n", "pipeline:\n  start_date: 2026-03-02\n"))
    proc = _run(acme_day, "--start", "2026-03-01", "--end", "2026-03-02")
    assert proc.returncode == 2
    assert "--start 2026-03-01 is before pipeline.start_date 2026-03-02" in proc.stderr
    proc = _run(acme_day, "--start", "2026-3-1")
    assert proc.returncode == 2 and "--start '2026-3-1' is not a YYYY-MM-DD day" in proc.stderr
    proc = _run(acme_day, "--start", "2026-03-03", "--end", "2026-03-02")
    assert proc.returncode == 2 and "before --start" in proc.stderr
    assert not (acme_day.duckdb.parent / ".dagster" / "storage").exists()  # nothing ran


def test_a_file_that_is_not_duckdb_is_refused_at_once_and_kept(ledger: Ledger):
    # It used to be retried by every step's connection back-off for minutes.
    ledger.write_requests("2026-03-02", [request("r1", "2026-03-02T10:00:00.000Z")])
    ledger.duckdb.parent.mkdir(parents=True, exist_ok=True)
    ledger.duckdb.write_bytes(b"my notes, not a database\n")
    t0 = time.monotonic()
    proc = _run(ledger)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert time.monotonic() - t0 < 30
    assert "cannot be opened as a DuckDB database" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert ledger.duckdb.read_bytes() == b"my notes, not a database\n"


def test_run_ledger_gives_the_garbage_collector_back_as_it_found_it(ledger: Ledger):
    """`run_ledger` pauses the cyclic GC while Dagster loads, then freezes what loading built;
    a caller in the same process (a notebook, a test) gets the GC back enabled and unfrozen,
    whichever way the call ends."""
    import datetime as dt
    import gc

    from pipeline.cli import run_ledger

    assert gc.isenabled() and gc.get_freeze_count() == 0
    rc = run_ledger(ledger.config, dt.date(2026, 3, 3), dt.date(2026, 3, 2))  # end before start
    assert rc == 2
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        assert run_ledger(ledger.config, dt.date(2026, 3, 3), dt.date(2026, 3, 2)) == 2
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()
