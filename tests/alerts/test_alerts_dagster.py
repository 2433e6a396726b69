"""The alert assets through Dagster against a temporary DuckDB: daily-partitioned members of the
ledger graph, recorded once, delivered once (critical first), re-materializing is idempotent,
the webhook URL may come from an environment variable and never shows in Dagster's records."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource
from martkit import CHAT_MONTHLY_BUDGET as BUDGET
from martkit import NO_ANOMALIES

from pipeline.defs.alerts.assets import alert_marts
from pipeline.defs.resources import AlertDeliveryResource, LedgerConfigResource

DAY = "2026-11-03"


def materialize(cfg, instance=None, day: str = DAY, **delivery):
    return dg.materialize(
        [alert_marts],  # alerts_delivered is one of its check specs
        partition_key=day,
        instance=instance,
        resources={
            "ledger": LedgerConfigResource(path=str(cfg.source)),
            "duckdb": DuckDBResource(database=str(cfg.duckdb_path)),
            "alert_delivery": AlertDeliveryResource(backoff_base_s=0.0, **delivery),
        },
    )


def alerts_meta(res) -> dict:
    return {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in res.get_asset_materialization_events()
    }


def test_alert_assets_are_idempotent(make_cfg, marts, receiver):
    for i in range(1, 4):
        marts.add(dt.date(2026, 11, i), "20")  # $60 of $100: 50% reached, forecast $600
    cfg = make_cfg(budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url": receiver.url})

    res = materialize(cfg)
    assert res.success
    meta = alerts_meta(res)
    assert meta["marts/alerts"]["new"].value == 2 and meta["marts/alerts"]["delivered"].value == 2
    assert meta["marts/alerts"]["as_of"].value == DAY
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


def test_evaluation_is_as_of_the_partition_not_the_last_day_in_the_marts(make_cfg, marts):
    marts.add(dt.date(2026, 11, 1), "10")
    marts.add(dt.date(2026, 11, 20), "90")  # crosses 50% and 100% only on Nov 20
    cfg = make_cfg(budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url": None})
    thresholds = "SELECT count(*) FROM marts.alerts WHERE kind = 'budget_threshold'"
    meta = alerts_meta(materialize(cfg, day="2026-11-02"))
    assert meta["marts/alerts"]["as_of"].value == "2026-11-02"
    assert marts.query(thresholds) == [(0,)]  # $10 of $100 as of Nov 2
    meta = alerts_meta(materialize(cfg, day="2026-11-25"))  # past the data: its last day
    assert meta["marts/alerts"]["as_of"].value == "2026-11-20"
    assert meta["marts/alerts"]["evaluated_budget_threshold"].value == 2
    assert marts.query(thresholds) == [(2,)]


def test_critical_alerts_are_delivered_first_and_a_down_receiver_defers_the_rest(
    make_cfg, marts, receiver
):
    over = {**BUDGET, "thresholds_pct": [50, 100]}
    second = {**over, "id": "chat-monthly-2"}
    marts.add(dt.date(2026, 11, 1), "150")  # both budgets: 50% (info) and 100% (critical)
    cfg = make_cfg(budgets=[over, second], alerts={**NO_ANOMALIES, "webhook_url": receiver.url})
    receiver.fail_next = 3  # the first alert tried gets a 500 on all its 3 attempts
    res = materialize(cfg, day="2026-11-01")
    assert res.success  # a failed delivery never fails the run
    meta = alerts_meta(res)["marts/alerts"]
    # The receiver is down: the other alerts wait for the next run instead of each
    # spending its retries on it.
    assert meta["failed"].value == 1 and meta["deferred"].value == 3
    [(severity, attempts, error)] = marts.query(
        "SELECT severity, attempts, last_error FROM marts.alerts WHERE attempts > 0"
    )
    assert (severity, attempts) == ("critical", 3) and "HTTP 500" in error
    [check] = res.get_asset_check_evaluations()
    assert not check.passed and check.metadata["undelivered"].value == 4

    res = materialize(cfg, day="2026-11-01")  # next run: critical first, then the rest
    assert res.success
    assert [r["severity"] for r in receiver.received] == ["critical", "critical", "info", "info"]
    [check] = res.get_asset_check_evaluations()
    assert check.passed


def test_an_alert_the_receiver_refuses_does_not_hold_back_the_others(make_cfg, marts, receiver):
    over = {**BUDGET, "thresholds_pct": [50, 100]}
    marts.add(dt.date(2026, 11, 1), "150")
    cfg = make_cfg(budgets=[over], alerts={**NO_ANOMALIES, "webhook_url": receiver.url})
    receiver.fail_next, receiver.fail_status = 1, 400  # refuses the critical one, once
    meta = alerts_meta(materialize(cfg, day="2026-11-01"))["marts/alerts"]
    assert meta["failed"].value == 1 and meta["deferred"].value == 0
    assert meta["delivered"].value == 1  # the info alert went out anyway
    assert marts.query(
        "SELECT severity, attempts FROM marts.alerts WHERE delivered_at IS NULL"
    ) == [
        ("critical", 1)  # a 400 is not retried within the run...
    ]
    materialize(cfg, day="2026-11-01")  # ...but on the next one
    assert marts.query("SELECT count(*) FROM marts.alerts WHERE delivered_at IS NULL") == [(0,)]


def test_webhook_url_from_an_environment_variable_is_used_and_never_recorded(
    make_cfg, marts, receiver, monkeypatch
):
    marts.add(dt.date(2026, 11, 1), "60")
    cfg = make_cfg(
        budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url_env": "LEDGER_TEST_HOOK_URL"}
    )
    monkeypatch.delenv("LEDGER_TEST_HOOK_URL", raising=False)
    instance = dg.DagsterInstance.ephemeral()
    res = materialize(cfg, instance=instance, day="2026-11-01")
    meta = alerts_meta(res)["marts/alerts"]
    assert "LEDGER_TEST_HOOK_URL" in meta["webhook"].value and meta["delivered"].value == 0
    assert receiver.received == []

    # A secret-looking URL (Slack's carry a token in the path).
    secret_url = receiver.url + "/T000/B000/s3cr3t-token"
    monkeypatch.setenv("LEDGER_TEST_HOOK_URL", secret_url)
    res = materialize(cfg, instance=instance, day="2026-11-01")
    assert alerts_meta(res)["marts/alerts"]["delivered"].value == 1
    assert len(receiver.received) == 1
    recorded = " ".join(
        str(r) for run in instance.get_runs() for r in instance.all_logs(run.run_id)
    )
    assert "s3cr3t-token" not in recorded
    assert marts.query("SELECT count(*) FROM marts.alerts WHERE last_error LIKE '%s3cr3t%'") == [
        (0,)
    ]


def test_undelivered_alert_fails_the_warning_check(make_cfg, marts):
    marts.add(dt.date(2026, 11, 1), "60")
    cfg = make_cfg(budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url": None})
    res = materialize(cfg, day="2026-11-01")
    assert res.success  # delivery problems never fail the run...
    [check] = res.get_asset_check_evaluations()
    assert not check.passed and check.metadata["undelivered"].value == 1  # ...but are visible


def test_alert_assets_are_in_the_daily_ledger_job_with_no_sensor():
    from pipeline.definitions import defs

    job = defs.resolve_job_def("ledger_daily")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"marts/alerts", "marts/budget_status", "marts/split_billing_daily"} <= keys
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["marts", "alerts"]))
    assert node.partitions_def is not None and node.backfill_policy is not None
    # They run after the marts they read, inside the same run.
    assert dg.AssetKey(["marts", "reconciliation_daily"]) in node.parent_keys
    assert list(defs.get_repository_def().sensor_defs) == []
