"""Budgets: calendar periods, thresholds once per period, forecast before crossing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.alerts import evaluate_alerts
from pipeline.alerts.periods import period_bounds

D = dt.date


# Budget tests look at budget alerts only: anomalies need an impossible dollar impact.
NO_ANOMALIES = {"min_impact_usd": "1000000", "baseline_days": 28, "sensitivity": 4.0}


def budget(**kw):
    return {
        "id": "b1",
        "scope": "api_key",
        "match": "chat-prod",
        "usd": "100",
        "period": "monthly",
        "thresholds_pct": [50, 80, 100],
        **kw,
    }


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        ("daily", D(2026, 11, 27), (D(2026, 11, 27), D(2026, 11, 27))),
        # ISO weeks start on Monday: Sunday belongs to the week that began six days earlier.
        ("weekly", D(2026, 11, 29), (D(2026, 11, 23), D(2026, 11, 29))),
        ("weekly", D(2026, 11, 30), (D(2026, 11, 30), D(2026, 12, 6))),
        ("weekly", D(2026, 12, 31), (D(2026, 12, 28), D(2027, 1, 3))),
        ("monthly", D(2026, 11, 30), (D(2026, 11, 1), D(2026, 11, 30))),
        ("monthly", D(2026, 12, 1), (D(2026, 12, 1), D(2026, 12, 31))),
        ("monthly", D(2028, 2, 10), (D(2028, 2, 1), D(2028, 2, 29))),
    ],
)
def test_period_bounds_are_calendar_aligned(period, day, expected):
    assert period_bounds(period, day) == expected


def test_thresholds_fire_once_per_period(make_cfg, marts):
    cfg = make_cfg(budgets=[budget()], alerts=NO_ANOMALIES)
    for i in range(1, 11):  # $6/day Nov 1..10 -> $60 = 60%
        marts.add(D(2026, 11, i), "6")
    r1 = evaluate_alerts(cfg, now=dt.datetime(2026, 11, 11))
    kinds = sorted((a.kind, a.payload.get("threshold_pct")) for a in r1.evaluated)
    assert kinds == [("budget_forecast", None), ("budget_threshold", 50)]
    assert len(r1.new) == 2

    r2 = evaluate_alerts(cfg)  # same data, second run: found again, recorded once
    assert len(r2.evaluated) == 2 and r2.new == []
    assert marts.query("SELECT count(*) FROM marts.alerts") == [(2,)]

    marts.add(D(2026, 11, 11), "25")  # $85 -> 80% reached; 50% and forecast not again
    r3 = evaluate_alerts(cfg)
    assert [(a.kind, a.payload["threshold_pct"]) for a in r3.new] == [("budget_threshold", 80)]
    assert r3.new[0].severity == "warning"
    assert "$85.00 of $100.00" in r3.new[0].message

    marts.add(D(2026, 12, 1), "60")  # a new month: 50% fires again, for December
    r4 = evaluate_alerts(cfg)
    assert [(a.kind, a.payload["threshold_pct"], a.period) for a in r4.new] == [
        ("budget_threshold", 50, "monthly:2026-12-01")
    ]
    status = marts.query(
        "SELECT period_start, spent_usd, limit_usd, pct, is_current FROM marts.budget_status "
        "ORDER BY period_start"
    )
    assert status[-1] == (D(2026, 12, 1), Decimal("60"), Decimal("100"), Decimal("60"), True)
    assert status[0][0] == D(2026, 11, 1) and status[0][1] == Decimal("85") and not status[0][4]


def test_weekly_budget_resets_on_iso_monday(make_cfg, marts):
    cfg = make_cfg(
        budgets=[budget(period="weekly", usd="60", thresholds_pct=[100])], alerts=NO_ANOMALIES
    )
    marts.add(D(2026, 11, 29), "40")  # Sunday: week of Mon 23rd
    marts.add(D(2026, 11, 30), "40")  # Monday: a new week
    r = evaluate_alerts(cfg, now=dt.datetime(2026, 12, 1))
    # $80 within 7 days, but never $60 within one ISO week.
    assert [a for a in r.evaluated if a.kind == "budget_threshold"] == []
    marts.add(D(2026, 12, 6), "20")  # Sunday: the week of the 30th now holds $60
    r = evaluate_alerts(cfg)
    assert [(a.kind, a.period) for a in r.new] == [("budget_threshold", "weekly:2026-11-30")]


def test_monthly_budget_resets_on_the_first(make_cfg, marts):
    cfg = make_cfg(budgets=[budget(thresholds_pct=[100])], alerts=NO_ANOMALIES)
    marts.add(D(2026, 10, 31), "60")
    marts.add(D(2026, 11, 1), "60")
    r = evaluate_alerts(cfg)
    assert r.as_of == D(2026, 11, 1)
    assert [a for a in r.evaluated if a.kind == "budget_threshold"] == []
    statuses = {(s.period_start, s.spent_usd) for s in r.budget_status}
    assert statuses == {(D(2026, 10, 1), Decimal("60")), (D(2026, 11, 1), Decimal("60"))}


def test_forecast_alerts_before_the_limit_is_crossed(make_cfg, marts):
    cfg = make_cfg(budgets=[budget(usd="300", thresholds_pct=[100])], alerts=NO_ANOMALIES)
    for i in range(1, 4):  # $15/day: 3 days = $45 -> forecast $450 by Nov 30 (> $300)
        marts.add(D(2026, 11, i), "15")
    r = evaluate_alerts(cfg)
    [fc] = r.new
    assert fc.kind == "budget_forecast"
    assert fc.payload["spent_usd"] == Decimal("45") and fc.payload["forecast_usd"] == Decimal("450")
    assert "$450.00 by 2026-11-30" in fc.message and "150% of $300.00" in fc.message
    # Later in the month: still forecast over, but the forecast alert fired already.
    for i in range(4, 16):
        marts.add(D(2026, 11, i), "15")
    r = evaluate_alerts(cfg)
    assert r.new == []
    assert [a.kind for a in r.evaluated] == ["budget_forecast"]


def test_no_forecast_alert_when_run_rate_stays_under(make_cfg, marts):
    cfg = make_cfg(budgets=[budget(usd="300", thresholds_pct=[100])], alerts=NO_ANOMALIES)
    for i in range(1, 11):
        marts.add(D(2026, 11, i), "9")  # forecast $270 < $300
    r = evaluate_alerts(cfg)
    assert r.evaluated == []
    [st] = [s for s in r.budget_status if s.is_current]
    assert st.forecast_usd == Decimal("270") and st.spent_usd == Decimal("90")


@pytest.mark.parametrize(
    ("scope", "match", "expected"),
    [
        ("api_key", "chat-prod", "30"),
        ("environment", "prod", "50"),
        ("workload", "batch", "20"),
        ("byok_key", "ant-prod", "20"),  # key_id, not provider
        ("provider", "anthropic", "25"),
        ("member", "dan", "5"),  # dan owns sandbox-dev (rows name no member)
    ],
)
def test_budget_scopes_select_their_rows(make_cfg, marts, scope, match, expected):
    cfg = make_cfg(budgets=[budget(scope=scope, match=match, usd="1000")], alerts=NO_ANOMALIES)
    day = D(2026, 11, 5)
    marts.add(day, "30")
    marts.add(
        day,
        "20",
        api_key="batch-prod",
        workload="batch",
        model="anthropic/claude-opus-4.1",
        provider="anthropic",
        key_id="ant-prod",
    )
    marts.add(
        day, "5", api_key="sandbox-dev", workload="sandbox", provider="anthropic", key_id=None
    )
    marts.add(day, "7", api_key=None, workload=None, key_id=None)  # unattributed invoice cost
    r = evaluate_alerts(cfg, dry_run=True)
    [st] = [s for s in r.budget_status if s.is_current]
    assert st.spent_usd == Decimal(expected)


def test_daily_budget_catches_up_missed_days_once(make_cfg, marts):
    cfg = make_cfg(
        budgets=[budget(period="daily", usd="10", thresholds_pct=[100])], alerts=NO_ANOMALIES
    )
    for i in range(1, 6):
        marts.add(D(2026, 11, i), "12" if i in (2, 4) else "5")
    r = evaluate_alerts(cfg)
    assert sorted(a.period for a in r.new) == ["daily:2026-11-02", "daily:2026-11-04"]
    assert evaluate_alerts(cfg).new == []


@given(
    period=st.sampled_from(["daily", "weekly", "monthly"]),
    day=st.dates(min_value=D(2000, 1, 1), max_value=D(2100, 12, 31)),
)
def test_periods_tile_the_calendar(period, day):
    """Every day lies in exactly one period; periods are contiguous and calendar-aligned."""
    start, end = period_bounds(period, day)
    assert start <= day <= end
    assert period_bounds(period, start) == period_bounds(period, end) == (start, end)
    assert period_bounds(period, end + dt.timedelta(days=1))[0] == end + dt.timedelta(days=1)
    if period == "weekly":
        assert start.weekday() == 0 and (end - start).days == 6
    if period == "monthly":
        assert start.day == 1 and (end + dt.timedelta(days=1)).day == 1


@settings(max_examples=10, deadline=None)
@given(spend=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12))
def test_each_threshold_fires_once_however_runs_are_split(tmp_path_factory, spend):
    """Evaluating after every day or once at the end: each (period, threshold) is recorded
    at most once, and a threshold is recorded iff the period's spend reached it."""
    from tests.alerts.conftest import Marts, make_config

    tmp = tmp_path_factory.mktemp("prop")
    marts = Marts(tmp / "ledger.duckdb")
    cfg = make_config(
        tmp,
        budgets=[budget(period="weekly", usd="100", thresholds_pct=[50, 100])],
        alerts=NO_ANOMALIES,
    )
    start = D(2026, 11, 2)  # a Monday
    for i, usd in enumerate(spend):
        marts.add(start + dt.timedelta(days=i), str(usd))
        evaluate_alerts(cfg, window_days=14)
    rows = marts.query(
        "SELECT period, json_extract(payload, '$.threshold_pct')::INT FROM marts.alerts "
        "WHERE kind = 'budget_threshold'"
    )
    assert len(rows) == len(set(rows))
    weeks: dict[str, int] = {}
    for i, usd in enumerate(spend):
        day = start + dt.timedelta(days=i)
        key = f"weekly:{period_bounds('weekly', day)[0].isoformat()}"
        weeks[key] = weeks.get(key, 0) + usd
    expected = {(k, t) for k, total in weeks.items() for t in (50, 100) if total >= t}
    assert set(rows) == expected
