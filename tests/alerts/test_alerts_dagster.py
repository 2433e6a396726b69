"""The alert assets through Dagster against a temporary DuckDB: recorded once, delivered
once, re-materializing is idempotent; the sensor and job are in the code location."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource
from martkit import CHAT_MONTHLY_BUDGET as BUDGET
from martkit import NO_ANOMALIES

from pipeline.defs.alerts.assets import alert_marts
from pipeline.defs.alerts.checks import alerts_delivered
from pipeline.defs.resources import LedgerConfigResource


def materialize(cfg):
    return dg.materialize(
        [alert_marts, alerts_delivered],
        resources={
            "ledger": LedgerConfigResource(path=str(cfg.source)),
            "duckdb": DuckDBResource(database=str(cfg.duckdb_path)),
        },
    )


def test_alert_assets_are_idempotent(make_cfg, marts, receiver):
    for i in range(1, 4):
        marts.add(dt.date(2026, 11, i), "20")  # $60 of $100: 50% reached, forecast $600
    cfg = make_cfg(budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url": receiver.url})

    res = materialize(cfg)
    assert res.success
    meta = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in res.get_asset_materialization_events()
    }
    assert meta["marts/alerts"]["new"].value == 2 and meta["marts/alerts"]["delivered"].value == 2
    # November (current) and October (inside the 7-day catch-up window).
    assert meta["marts/budget_status"]["dagster/row_count"].value == 2
    [check] = res.get_asset_check_evaluations()
    assert check.passed

    res = materialize(cfg)  # again: nothing new, nothing re-sent
    assert res.success
    assert len(receiver.received) == 2
    assert marts.query("SELECT count(*) FROM marts.alerts") == [(2,)]
    assert marts.query(
        "SELECT count(*), count(*) FILTER (is_current) FROM marts.budget_status"
    ) == [(2, 1)]


def test_undelivered_alert_fails_the_warning_check(make_cfg, marts):
    marts.add(dt.date(2026, 11, 1), "60")
    cfg = make_cfg(budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url": None})
    res = materialize(cfg)
    assert res.success  # delivery problems never fail the run...
    [check] = res.get_asset_check_evaluations()
    assert not check.passed and check.metadata["undelivered"].value == 1  # ...but are visible


def test_code_location_has_the_alert_sensor():
    from pipeline.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"marts/alerts", "marts/budget_status"} <= keys
    sensor = defs.resolve_sensor_def("alerts_after_ledger")
    assert sensor.job_name == "alerts_evaluate"
    assert defs.resolve_job_def("alerts_evaluate") is not None
