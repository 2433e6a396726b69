"""The daily schedule re-runs a trailing window as one range run (the names of assets, checks,
jobs and schedules are snapshot-tested in test_pipeline_contracts.py)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipeline.definitions import defs
from pipeline.defs.reconcile.schedules import ledger_daily_schedule, rerun_window


def test_rerun_window_is_trailing_and_clipped():
    assert rerun_window(dt.date(2026, 3, 10), 7, dt.date(2026, 1, 1)) == (
        dt.date(2026, 3, 3),
        dt.date(2026, 3, 9),
    )
    assert rerun_window(dt.date(2026, 1, 3), 7, dt.date(2026, 1, 1)) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 2),
    )
    assert rerun_window(dt.date(2026, 3, 10), 0, dt.date(2026, 1, 1)) == (
        dt.date(2026, 3, 9),
        dt.date(2026, 3, 9),
    )


def test_schedule_requests_one_range_run_over_the_window():
    ctx = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 10, 2, 30, tzinfo=dt.UTC)
    )
    req = ledger_daily_schedule(ctx)
    assert req.tags["dagster/asset_partition_range_start"] == "2026-03-03"
    assert req.tags["dagster/asset_partition_range_end"] == "2026-03-09"
    assert defs.resolve_schedule_def("ledger_daily_schedule").cron_schedule == "30 2 * * *"
