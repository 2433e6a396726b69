"""The code location: asset keys and checks are contracts (snapshot), one job covers the
whole ledger graph, and the daily schedule re-runs a trailing window as one range run."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipeline.definitions import defs
from pipeline.defs.reconcile.schedules import ledger_daily_schedule, rerun_window

LEDGER_ASSETS = [
    "intermediate/request_groups",
    "marts/cost_per_accepted_output",
    "marts/non_usage_charges",
    "marts/policy_violations",
    "marts/reconciliation_daily",
    "marts/routing_health",
    "marts/split_billing_daily",
    "marts/unattributed_usage",
    "staging/invoice_lines",
    "staging/outcomes",
    "staging/requests",
]


def test_asset_keys_and_checks_snapshot():
    job = defs.resolve_job_def("ledger_daily")
    keys = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
    assert keys == LEDGER_ASSETS
    checks = sorted(
        (c.asset_key.to_user_string(), c.name)
        for c in defs.resolve_asset_graph().asset_check_keys
        if c.asset_key.to_user_string() in LEDGER_ASSETS
    )
    assert checks == [
        ("marts/policy_violations", "no_policy_violations"),
        ("marts/reconciliation_daily", "variance_within_tolerance"),
        ("marts/split_billing_daily", "split_billing_adds_up"),
        ("staging/requests", "rejected_rate_under_threshold"),
    ]
    graph = defs.resolve_asset_graph()
    for key in LEDGER_ASSETS:
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert node.partitions_def is not None and node.backfill_policy is not None


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
