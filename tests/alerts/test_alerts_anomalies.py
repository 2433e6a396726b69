"""Anomalies: a spike above min_impact fires with the right driver; below it, nothing;
weekday seasonality keeps a regular busy weekday from looking anomalous."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pipeline.alerts import evaluate_alerts
from pipeline.alerts.anomalies import Baseline, baseline, is_anomalous

D = dt.date
START = D(2026, 10, 1)
NOISE = ["9.50", "10.00", "10.50", "10.00", "9.80", "10.20", "10.00"]


def history(marts, days: int = 28) -> list[dt.date]:
    """28 days of steady spend: chat-prod on gpt-4.1 ~$10/day, plus $0.50/day of opus."""
    out = []
    for i in range(days):
        day = START + dt.timedelta(days=i)
        marts.add(day, NOISE[i % 7])
        marts.add(
            day, "0.50", model="anthropic/claude-opus-4.1", provider="anthropic", key_id="ant-prod"
        )
        out.append(day)
    return out


def test_spike_above_min_impact_fires_with_driver(make_cfg, marts):
    days = history(marts)
    spike = days[-1] + dt.timedelta(days=1)
    marts.add(spike, "10.00")
    marts.add(
        spike, "90.50", model="anthropic/claude-opus-4.1", provider="anthropic", key_id="ant-prod"
    )
    r = evaluate_alerts(make_cfg(), dry_run=True)
    assert r.as_of == spike
    by_scope = {a.scope: a for a in r.evaluated if a.kind == "anomaly"}
    a = by_scope["api_key:chat-prod"]
    assert a.payload["actual_usd"] == Decimal("100.50")
    assert a.payload["expected_usd"] == Decimal("10.00")  # same-weekday median: 9.50 + 0.50
    assert a.payload["driver"]["dimension"] == "model"
    assert a.payload["driver"]["value"] == "anthropic/claude-opus-4.1"
    assert a.payload["driver"]["delta_usd"] == Decimal("90.00")
    assert "$100.50 vs expected $10.00" in a.message
    assert "Likely driver: model anthropic/claude-opus-4.1" in a.message
    # The same move seen per model, per BYOK key and per workload; the gpt-4.1 model did not move.
    assert {"model:anthropic/claude-opus-4.1", "byok_key:ant-prod", "workload:chat"} <= set(
        by_scope
    )
    assert "model:openai/gpt-4.1" not in by_scope
    assert by_scope["model:anthropic/claude-opus-4.1"].payload["driver"]["dimension"] in {
        "api_key",
        "workload",
        "byok_key",
        "provider",
    }


def test_spike_below_min_impact_does_not_fire(make_cfg, marts):
    days = history(marts)
    spike = days[-1] + dt.timedelta(days=1)
    marts.add(spike, "10.00")
    marts.add(
        spike, "19.50", model="anthropic/claude-opus-4.1", provider="anthropic", key_id="ant-prod"
    )  # +$19 over a $20 minimum impact: huge in sigmas, not in dollars
    r = evaluate_alerts(make_cfg(), dry_run=True)
    assert [a for a in r.evaluated if a.kind == "anomaly"] == []
    # ...and the same data with a lower minimum impact does fire.
    cfg = make_cfg(alerts={"min_impact_usd": "5", "baseline_days": 28, "sensitivity": 4.0})
    r = evaluate_alerts(cfg, dry_run=True)
    assert "api_key:chat-prod" in {a.scope for a in r.evaluated if a.kind == "anomaly"}


def test_weekday_seasonality(make_cfg, marts):
    # Saturdays are always busy ($60), other days $10: a $60 Saturday is normal, a $60 Tuesday not.
    for i in range(35):
        day = START + dt.timedelta(days=i)
        marts.add(day, "60" if day.weekday() == 5 else "10")
    saturday = max(
        START + dt.timedelta(days=i)
        for i in range(35)
        if (START + dt.timedelta(days=i)).weekday() == 5
    )
    r = evaluate_alerts(make_cfg(), as_of=saturday, window_days=1, dry_run=True)
    assert [a for a in r.evaluated if a.kind == "anomaly"] == []
    tuesday = saturday + dt.timedelta(days=3)
    marts.add(tuesday, "60")
    r = evaluate_alerts(make_cfg(), as_of=tuesday, window_days=1, dry_run=True)
    [a] = [a for a in r.evaluated if a.scope == "api_key:chat-prod"]
    assert a.payload["expected_usd"] == Decimal("10") and a.payload["same_weekday"] is True


def test_no_verdict_without_enough_history(make_cfg, marts):
    for i in range(5):
        marts.add(START + dt.timedelta(days=i), "10")
    marts.add(START + dt.timedelta(days=5), "500")
    r = evaluate_alerts(make_cfg(), dry_run=True)
    assert [a for a in r.evaluated if a.kind == "anomaly"] == []


def test_drop_is_reported_as_drop(make_cfg, marts):
    days = history(marts)
    marts.add(days[-1] + dt.timedelta(days=1), "0.01")
    marts.add(days[-1] + dt.timedelta(days=1), "200", api_key="batch-prod", workload="batch")
    # chat-prod fell from ~$10.50 to $0.01: below the $20 minimum impact, so no alert for it;
    # with a $5 minimum it is reported as a drop.
    cfg = make_cfg(alerts={"min_impact_usd": "5", "baseline_days": 28, "sensitivity": 4.0})
    r = evaluate_alerts(cfg, dry_run=True)
    a = next(a for a in r.evaluated if a.scope == "api_key:chat-prod")
    assert "Spend drop" in a.message and a.severity == "info"
    assert a.payload["delta_usd"] < 0


def test_baseline_median_and_mad():
    days = [START + dt.timedelta(days=i) for i in range(10)]
    hist = {
        d: Decimal(v)
        for d, v in zip(days, ["1", "2", "3", "4", "100", "3", "2", "1", "2", "3"], strict=True)
    }
    b = baseline(hist, days, START + dt.timedelta(days=10))
    assert b.expected == Decimal("2.5") and not b.same_weekday  # the outlier does not move it
    assert b.sigma == Decimal("1.4826") * Decimal("0.5")
    assert is_anomalous(Decimal("30"), b, Decimal("4"), Decimal("20"))
    assert not is_anomalous(Decimal("8"), b, Decimal("4"), Decimal("20"))  # under $20 impact
    flat = Baseline(expected=Decimal("100"), sigma=Decimal(0), days=28, same_weekday=True)
    assert not is_anomalous(Decimal("115"), flat, Decimal("4"), Decimal("10"))  # < 20% move
    assert is_anomalous(Decimal("125"), flat, Decimal("4"), Decimal("10"))


def test_a_sustained_level_change_is_one_episode(make_cfg, marts):
    days = history(marts)
    for i in range(1, 4):  # three days in a row at ~5x
        marts.add(days[-1] + dt.timedelta(days=i), "50")
    r = evaluate_alerts(make_cfg(), dry_run=True)
    chat = [a for a in r.evaluated if a.scope == "api_key:chat-prod"]
    assert [a.period for a in chat] == [f"day:{(days[-1] + dt.timedelta(days=1)).isoformat()}"]
    # Evaluated as of the third day with a one-day window: the episode began earlier, so the
    # day is not announced again.
    r = evaluate_alerts(make_cfg(), window_days=1, dry_run=True)
    assert [a for a in r.evaluated if a.scope == "api_key:chat-prod"] == []
