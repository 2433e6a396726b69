"""The vectorised (polars) anomaly baselines give exactly what the Decimal loop they replaced
gave: the same median, MAD, day count and weekday choice for every dimension value and day,
and the same alerts, on random spend (spikes, drops, zero days, negative credits, many
values, a history with and without enough same weekdays)."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal

import duckdb
import polars as pl
import pytest

from pipeline.alerts import anomalies as an
from pipeline.alerts.queries import sql

D = dt.date
START = D(2026, 1, 5)
MODELS = ["openai/gpt-4.1", "openai/gpt-4.1-mini", "anthropic/claude-sonnet-4", "meta/llama"]
KEYS = ["oai-prod", "ant-prod", None]
WORKLOADS = ["chat", "batch", "sandbox", None]
API = ["chat-prod", "chat-staging", "batch-prod", "sandbox-dev"]


def _amount(rng: random.Random, level: Decimal) -> Decimal:
    r = rng.random()
    if r < 0.04:
        return (level * rng.randint(5, 30)).quantize(Decimal("0.000000001"))  # spike
    if r < 0.07:
        return Decimal(0)  # a quiet day
    if r < 0.08:
        return Decimal(-rng.randint(1, 500)) / 100  # a credit
    noise = Decimal(rng.randint(-300_000_000, 300_000_000)) / Decimal(10**9)
    return (level * (1 + noise)).quantize(Decimal("0.000000001"))


def _fill(path, seed: int, days: int, skip_days: set[int]) -> dt.date:
    rng = random.Random(seed)
    rows = []
    combos = [
        (rng.choice(API), rng.choice(WORKLOADS), rng.choice(MODELS), rng.choice(KEYS))
        for _ in range(rng.randint(6, 14))
    ]
    levels = [Decimal(rng.randint(50, 20_000)) / 100 for _ in combos]
    for i in range(days):
        if i in skip_days:
            continue  # no data that day at all (not zero spend)
        day = START + dt.timedelta(days=i)
        for (api, wl, model, key), level in zip(combos, levels, strict=True):
            if rng.random() < 0.1:
                continue  # this combination idle today
            weekday_boost = Decimal(3) if day.weekday() == 0 else Decimal(1)
            total = _amount(rng, level * weekday_boost)
            rows.append(
                (day, api, wl, model, "openai" if key != "ant-prod" else "anthropic", key, total)
            )
    with duckdb.connect(str(path)) as c:
        c.executemany(
            "INSERT INTO marts.split_billing_daily (day, environment, app, api_key_id, workload, "
            "member_id, provider, model, credential, requests, provider_billed_usd, "
            "provider_estimated_usd, platform_fee_usd, platform_credits_usd, total_usd, status, "
            "key_id, platform_fee_estimated_usd, platform_credits_estimated_usd, list_usd, "
            "attribution) VALUES (?, 'prod', 'app', ?, ?, NULL, ?, ?, 'byok', 1, ?, ?, 0, 0, ?, "
            "'invoiced', ?, 0, 0, ?, 'logged')",
            [(d, a, w, m, p, t, t, t, k, t) for d, a, w, m, p, k, t in rows],
        )
    return START + dt.timedelta(days=days - 1)


def reference_evaluate(conn, config, as_of, window_days):
    """The loop `evaluate_anomalies` ran before baselines were vectorised (kept verbatim as
    the oracle): one Decimal `baseline()` per checked day and dimension value."""
    settings = config.alerts
    lookback = settings.baseline_days
    first_check = as_of - dt.timedelta(days=max(window_days, 1) - 1)
    start = first_check - dt.timedelta(days=lookback + 7)
    data_days = [
        r[0] for r in conn.execute(sql("data_days"), {"start": start, "end": as_of}).fetchall()
    ]
    rows = conn.execute(sql("anomaly_daily_spend"), {"start": start, "end": as_of}).fetchall()
    col = {"api_key_id": 1, "workload": 2, "model": 3, "key_id": 4, "provider": 5}
    series = defaultdict(lambda: defaultdict(lambda: defaultdict(Decimal)))
    sub = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(Decimal))))
    for r in rows:
        day, spend = r[0], Decimal(r[6])
        for dim, c in an.DIMENSIONS.items():
            v = r[col[c]]
            if dim != "byok_key" and v in an.UNATTRIBUTED:
                continue
            if dim == "byok_key" and v is None:
                continue
            series[dim][v][day] += spend
            for sdim, sc in an.DRIVER_DIMS.items():
                if sdim != dim:
                    sub[dim][v][(sdim, r[col[sc]])][day] += spend
    sensitivity = Decimal(str(settings.sensitivity))
    min_impact = settings.min_impact_usd
    alerts = []
    before = [d for d in data_days if d < first_check]
    days = before[-1:] + [d for d in data_days if d >= first_check]
    ongoing = {}
    for day in days:
        window = [d for d in data_days if day - dt.timedelta(days=lookback) <= d < day]
        today = {}
        if len(window) >= an.MIN_BASELINE_DAYS:
            for dim in an.DIMENSIONS:
                for value, hist in series[dim].items():
                    actual = hist.get(day, Decimal(0))
                    base = an.baseline(hist, window, day)
                    if not an.is_anomalous(actual, base, sensitivity, min_impact):
                        continue
                    direction = 1 if actual > base.expected else -1
                    today[(dim, value)] = direction
                    if day < first_check or ongoing.get((dim, value)) == direction:
                        continue
                    alerts.append(
                        an._anomaly_alert(
                            dim, value, day, actual, base, hist, sub[dim][value], window
                        )
                    )
        ongoing = today
    return alerts


@pytest.mark.parametrize(
    ("seed", "days", "skip", "window", "min_impact", "baseline_days"),
    [
        (1, 70, set(), 60, "1", 28),
        (2, 45, {3, 4, 10, 11, 17}, 40, "5", 28),  # gaps: fewer same weekdays, all-days median
        (3, 90, {20}, 80, "0.5", 14),
        (4, 40, set(), 35, "100", 7),  # a high bar: few or no alerts, still identical
        (5, 120, {1, 2, 50}, 110, "2", 56),
    ],
)
def test_vectorised_alerts_equal_the_decimal_loop(
    make_cfg, marts, seed, days, skip, window, min_impact, baseline_days
):
    as_of = _fill(marts.path, seed, days, skip)
    cfg = make_cfg(
        alerts={
            "webhook_url": None,
            "min_impact_usd": min_impact,
            "baseline_days": baseline_days,
            "sensitivity": 3.0,
        },
    )
    with duckdb.connect(str(marts.path), read_only=True) as conn:
        new = an.evaluate_anomalies(conn, cfg, as_of, window)
        old = reference_evaluate(conn, cfg, as_of, window)
    assert new == old
    if min_impact != "100":
        assert len(old) > 0  # the comparison covered real alerts


@pytest.mark.parametrize("seed", range(6))
def test_baseline_frame_equals_baseline_per_value(seed):
    rng = random.Random(seed)
    n_values = rng.randint(1, 25)
    data_days = sorted(
        {START + dt.timedelta(days=rng.randint(0, 80)) for _ in range(rng.randint(10, 70))}
    )
    hist = [
        {
            d: Decimal(rng.randint(-(10**6), 10**12)) / Decimal(10**9)
            for d in data_days
            if rng.random() < 0.7
        }
        for _ in range(n_values)
    ]
    lookback = rng.choice([7, 14, 28, 35])
    spend = pl.DataFrame(
        {
            "vid": [i for i, h in enumerate(hist) for _ in h],
            "day": [d for h in hist for d in h],
            "nanos": [int(v.scaleb(9)) for h in hist for v in h.values()],
        },
        schema={"vid": pl.Int32, "day": pl.Date, "nanos": pl.Int64},
    )
    frame = an.baseline_frame(spend, n_values, data_days, data_days, lookback)
    got = {
        (day, vid): (an.frame_baseline(med2, mad4, n, same), actual)
        for day, vid, actual, med2, mad4, n, same in frame.iter_rows()
    }
    expected = {}
    for day in data_days:
        window, _, _ = an.baseline_days_for(data_days, day, lookback)
        if len(window) < an.MIN_BASELINE_DAYS:
            continue
        for vid, h in enumerate(hist):
            expected[(day, vid)] = (
                an.baseline(h, window, day),
                int(h.get(day, Decimal(0)).scaleb(9)),
            )
    assert got == expected
    assert got or all(len(an.baseline_days_for(data_days, d, lookback)[0]) < 7 for d in data_days)


def test_empty_inputs():
    empty = pl.DataFrame(schema={"vid": pl.Int32, "day": pl.Date, "nanos": pl.Int64})
    assert an.baseline_frame(empty, 0, [START], [START], 28).height == 0
    days = [START + dt.timedelta(days=i) for i in range(3)]
    assert an.baseline_frame(empty, 5, days, days, 28).height == 0  # too little history


def test_amounts_beyond_the_exact_integer_range_use_the_decimal_loop(make_cfg, marts):
    """A value spending more than the integer path holds exactly still gets the exact verdict."""
    days = [START + dt.timedelta(days=i) for i in range(30)]
    for d in days[:-1]:
        marts.add(d, "9000000.000000001")
    marts.add(days[-1], "90000000.5")
    cfg = make_cfg()
    with duckdb.connect(str(marts.path), read_only=True) as conn:
        new = an.evaluate_anomalies(conn, cfg, days[-1], 1)
        old = reference_evaluate(conn, cfg, days[-1], 1)
    assert new == old and any(a.scope == "api_key:chat-prod" for a in new)
