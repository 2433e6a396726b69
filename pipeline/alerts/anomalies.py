"""Spend anomalies (docs/reports-alerts.md): each day's spend per API key, workload, model and
BYOK key against a robust baseline (median and MAD of the trailing `alerts.baseline_days` days, same
weekday only when there are enough of those), fired only when the dollar impact reaches
`alerts.min_impact_usd`. Each alert names the likely driver: the model, key, workload, API
key or provider that moved most within that dimension value. Consecutive anomalous days in
the same direction are one episode, alerted once (on its first day)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import duckdb

from pipeline.alerts.model import Alert, alert_id, money
from pipeline.alerts.queries import sql
from routing_core.config import LedgerConfig

if TYPE_CHECKING:  # imported where baselines are computed: a day with no spend needs none
    import polars as pl

# dimension name -> column of anomaly_daily_spend.sql
DIMENSIONS = {
    "api_key": "api_key_id",
    "workload": "workload",
    "model": "model",
    "byok_key": "key_id",
}
# Driver candidates: the other dimensions plus the provider; on a tie the first listed wins
# (a model or key change is the more actionable explanation).
DRIVER_DIMS = {
    "model": "model",
    "byok_key": "key_id",
    "workload": "workload",
    "api_key": "api_key_id",
    "provider": "provider",
}
UNATTRIBUTED = {None, "", "(unattributed)"}

# Fewer baseline days than this: no verdict (a new deployment is not an anomaly).
MIN_BASELINE_DAYS = 7
# Same-weekday baselines need this many same weekdays in the window, else all days are used.
MIN_SAME_WEEKDAY = 3
# 1.4826 * MAD estimates the standard deviation of normally distributed noise.
MAD_SCALE = Decimal("1.4826")
# With a flat history MAD is 0; still demand a relative move before calling it anomalous.
MIN_RELATIVE_MOVE = Decimal("0.2")


@dataclass(frozen=True)
class Baseline:
    expected: Decimal
    sigma: Decimal  # robust spread (scaled MAD)
    days: int
    same_weekday: bool


def median(values: list[Decimal]) -> Decimal:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return Decimal(0)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def baseline(
    history: dict[dt.date, Decimal], baseline_days: list[dt.date], day: dt.date
) -> Baseline:
    """Median/MAD over `baseline_days` (days with data; a day without this value's spend counts
    as zero), restricted to `day`'s weekday when enough of those exist."""
    same = [d for d in baseline_days if d.weekday() == day.weekday()]
    use_same = len(same) >= MIN_SAME_WEEKDAY
    days = same if use_same else baseline_days
    values = [history.get(d, Decimal(0)) for d in days]
    med = median(values)
    mad = median([abs(v - med) for v in values])
    return Baseline(expected=med, sigma=MAD_SCALE * mad, days=len(days), same_weekday=use_same)


# Baselines are computed in whole nanodollars (the ledger's 9 decimal places) as integers, so
# the vectorised path gives exactly the Decimal reference's medians: no float is involved.
# Each median is the sum of the two middle values (lower and higher 0.5-quantiles; equal for
# an odd count), so a median is held doubled and a MAD quadrupled, both as exact integers.
NANO = 10**9
# polars returns quantiles of integers as Float64, exact below 2**53. Doubled medians and
# deviations must stay below that, so a dimension value whose daily spend reaches 2**50
# nanodollars (~$1.1M) is evaluated by the exact Decimal loop instead.
_EXACT_LIMIT = 2**52
# Cross-join rows (checked days x baseline days x dimension values) per polars batch: bounds
# memory on long windows with many values.
_BATCH_ROWS = 4_000_000


def baseline_days_for(
    data_days: list[dt.date], day: dt.date, lookback: int
) -> tuple[list[dt.date], list[dt.date], bool]:
    """(window, baseline days, same weekday?) for checking `day`: the data days of the
    trailing `lookback` days, narrowed to `day`'s weekday when enough of those exist."""
    window = [d for d in data_days if day - dt.timedelta(days=lookback) <= d < day]
    same = [d for d in window if d.weekday() == day.weekday()]
    use_same = len(same) >= MIN_SAME_WEEKDAY
    return window, (same if use_same else window), use_same


def baseline_frame(
    spend: pl.DataFrame,
    n_values: int,
    data_days: list[dt.date],
    check_days: list[dt.date],
    lookback: int,
) -> pl.DataFrame:
    """Vectorised median/MAD baselines with weekday seasonality, for every dimension value
    and checked day at once (the same numbers as `baseline()` per value and day).

    `spend`: columns `vid` (0..n_values-1, one per dimension value), `day`, `nanos` (that
    day's spend in whole nanodollars, Int64). Days a value has no row count as zero spend.
    Returns one row per (day, vid) for each checked day with at least MIN_BASELINE_DAYS
    baseline days: `actual` (nanos), `med2` (2 x median, nanos), `mad4` (4 x MAD, nanos),
    `n` (baseline days) and `same_weekday`."""
    import polars as pl

    batches: list[list[tuple[dt.date, dt.date]]] = [[]]
    meta: list[tuple[dt.date, int, bool]] = []
    per_batch = max(1, _BATCH_ROWS // max(n_values, 1))
    for day in check_days:
        window, days, use_same = baseline_days_for(data_days, day, lookback)
        if len(window) < MIN_BASELINE_DAYS:
            continue
        meta.append((day, len(days), use_same))
        # A checked day's baseline days stay in one batch (its median needs all of them).
        if batches[-1] and len(batches[-1]) + len(days) > per_batch:
            batches.append([])
        batches[-1].extend((day, d) for d in days)
    schema = {
        "day": pl.Date,
        "vid": pl.Int32,
        "actual": pl.Int64,
        "med2": pl.Int64,
        "mad4": pl.Int64,
        "n": pl.Int32,
        "same_weekday": pl.Boolean,
    }
    if not meta or n_values == 0:
        return pl.DataFrame(schema=schema)
    spend = spend.select(
        pl.col("vid").cast(pl.Int32), pl.col("day").cast(pl.Date), pl.col("nanos").cast(pl.Int64)
    )
    vids = pl.DataFrame({"vid": pl.arange(0, n_values, eager=True).cast(pl.Int32)})
    # Every (value, data day) once, a missing day as zero spend; each checked day's baseline
    # days then join onto it (one join per batch, no per-row lookups).
    dense = (
        vids.join(pl.DataFrame({"day": data_days}, schema={"day": pl.Date}), how="cross")
        .join(spend, on=["vid", "day"], how="left")
        .with_columns(pl.col("nanos").fill_null(0))
    )
    both_middles = (
        pl.col("nanos").quantile(0.5, "lower") + pl.col("nanos").quantile(0.5, "higher")
    ).cast(pl.Int64)
    parts = []
    for pairs in batches:
        chunk = pl.DataFrame(pairs, schema={"check": pl.Date, "day": pl.Date}, orient="row")
        parts.append(
            chunk.join(dense, on="day")
            .with_columns(med2=both_middles.over("check", "vid"))
            .with_columns(dev=(pl.col("nanos") * 2 - pl.col("med2")).abs())
            .group_by("check", "vid")
            .agg(
                pl.col("med2").first(),
                mad4=(
                    pl.col("dev").quantile(0.5, "lower") + pl.col("dev").quantile(0.5, "higher")
                ).cast(pl.Int64),
            )
        )
    info = pl.DataFrame(
        meta, schema={"check": pl.Date, "n": pl.Int32, "same_weekday": pl.Boolean}, orient="row"
    )
    return (
        pl.concat(parts)
        .join(info, on="check")
        .join(spend.rename({"day": "check", "nanos": "actual"}), on=["check", "vid"], how="left")
        .with_columns(pl.col("actual").fill_null(0))
        .rename({"check": "day"})
        .select(list(schema))
        .sort("day", "vid")
    )


def frame_baseline(med2: int, mad4: int, n: int, same_weekday: bool) -> Baseline:
    """The Baseline of one `baseline_frame` row (exact: halves and quarters of integers)."""
    return Baseline(
        expected=Decimal(med2) / 2 / NANO,
        sigma=MAD_SCALE * (Decimal(mad4) / 4 / NANO),
        days=n,
        same_weekday=same_weekday,
    )


def is_anomalous(
    actual: Decimal, base: Baseline, sensitivity: Decimal, min_impact: Decimal
) -> bool:
    delta = abs(actual - base.expected)
    if delta < min_impact:
        return False
    return delta > sensitivity * base.sigma and delta >= MIN_RELATIVE_MOVE * base.expected


def _label(dim: str, value: str | None) -> str:
    if dim == "byok_key" and value is None:
        return "shared capacity"
    return "(unattributed)" if value in UNATTRIBUTED else str(value)


def evaluate_anomalies(
    conn: duckdb.DuckDBPyConnection,
    config: LedgerConfig,
    as_of: dt.date,
    window_days: int,
) -> list[Alert]:
    """Anomalies on each data day of the last `window_days` days up to `as_of`."""
    settings = config.alerts
    lookback = settings.baseline_days
    first_check = as_of - dt.timedelta(days=max(window_days, 1) - 1)
    # One extra week of history: the data day before the first checked day is evaluated too
    # (not alerted), so an anomaly that started before the window is not re-announced.
    start = first_check - dt.timedelta(days=lookback + 7)
    data_days = [
        r[0] for r in conn.execute(sql("data_days"), {"start": start, "end": as_of}).fetchall()
    ]
    rows = conn.execute(sql("anomaly_daily_spend"), {"start": start, "end": as_of}).fetchall()
    # cols: day, api_key_id, workload, model, key_id, provider, spend
    col = {"api_key_id": 1, "workload": 2, "model": 3, "key_id": 4, "provider": 5}

    # series[dim][value][day]; the drivers' sub[dim][value][(subdim, subvalue)][day] is built
    # below only for the values that turn out anomalous (in the same row order, so ties break
    # the same way).
    series: dict[str, dict[object, dict[dt.date, Decimal]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(Decimal))
    )
    spends = [Decimal(r[6]) for r in rows]
    for r, spend in zip(rows, spends, strict=True):
        day = r[0]
        for dim, c in DIMENSIONS.items():
            v = r[col[c]]
            if dim != "byok_key" and v in UNATTRIBUTED:
                continue  # unattributed cost has its own report section, not an anomaly per key
            if dim == "byok_key" and v is None:
                continue  # shared capacity is not a BYOK key
            series[dim][v][day] += spend

    sensitivity = Decimal(str(settings.sensitivity))
    min_impact = settings.min_impact_usd
    alerts: list[Alert] = []
    before = [d for d in data_days if d < first_check]
    days = before[-1:] + [d for d in data_days if d >= first_check]
    # (dim, value) -> direction of the anomaly on the previous data day: a run of anomalous
    # days in one direction (a new level, an outage) is one episode, alerted on its first day.
    # Verdicts for every checked day at once (vectorised baselines), then the episodes in
    # day order: found[day] lists (dim, value, Baseline) in dimension, then value order.
    found = _anomalous_values(series, data_days, days, lookback, sensitivity, min_impact)
    wanted = {(dim, value) for hits in found.values() for dim, value, _ in hits}
    sub: dict[str, dict[object, dict[tuple[str, object], dict[dt.date, Decimal]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(Decimal)))
    )
    if wanted:
        for r, spend in zip(rows, spends, strict=True):
            for dim, c in DIMENSIONS.items():
                v = r[col[c]]
                if (dim, v) not in wanted:
                    continue
                for sdim, sc in DRIVER_DIMS.items():
                    if sdim != dim:
                        sub[dim][v][(sdim, r[col[sc]])][r[0]] += spend
    ongoing: dict[tuple[str, object], int] = {}
    for day in days:
        window = [d for d in data_days if day - dt.timedelta(days=lookback) <= d < day]
        today: dict[tuple[str, object], int] = {}
        for dim, value, base in found.get(day, ()):
            hist = series[dim][value]
            actual = hist.get(day, Decimal(0))
            direction = 1 if actual > base.expected else -1
            today[(dim, value)] = direction
            if day < first_check or ongoing.get((dim, value)) == direction:
                continue
            alerts.append(
                _anomaly_alert(dim, value, day, actual, base, hist, sub[dim][value], window)
            )
        ongoing = today
    return alerts


def _anomalous_values(
    series: dict[str, dict[object, dict[dt.date, Decimal]]],
    data_days: list[dt.date],
    days: list[dt.date],
    lookback: int,
    sensitivity: Decimal,
    min_impact: Decimal,
) -> dict[dt.date, list[tuple[str, object, Baseline]]]:
    """Per checked day, the anomalous (dimension, value, baseline)s. Baselines come from
    `baseline_frame` (polars, exact integers); only values whose move reaches the minimum
    dollar impact get the exact Decimal verdict of `is_anomalous`."""
    found: dict[dt.date, list[tuple[str, object, Baseline]]] = defaultdict(list)
    if not days or not any(series.get(dim) for dim in DIMENSIONS):
        return found  # nothing to evaluate
    import polars as pl

    # Prefilters on the integer frame, each conservative (never a verdict: is_anomalous
    # decides exactly): |2 x (actual - median)| (delta2) against 2 x the minimum impact,
    # rounded down; against the relative move (q x delta2 >= p x 2 x median for p/q = 0.2);
    # and against sensitivity x spread, in floats with a margin far above their error.
    min_delta2 = int((min_impact * 2 * NANO).to_integral_value(rounding="ROUND_FLOOR"))
    rel_p, rel_q = MIN_RELATIVE_MOVE.as_integer_ratio()
    spread_factor = float(sensitivity * MAD_SCALE) * (1 - 1e-9)
    delta2 = (pl.col("actual") * 2 - pl.col("med2")).abs()
    candidate = (
        (delta2 >= min_delta2)
        & (delta2 * rel_q >= pl.col("med2") * rel_p)
        & (delta2.cast(pl.Float64) * 2 > pl.col("mad4").cast(pl.Float64) * spread_factor)
    )
    for dim in DIMENSIONS:
        values = list(series[dim])  # first-seen order, as alerts are listed
        vid, day_col, nanos = [], [], []
        biggest = 0
        for i, value in enumerate(values):
            for d, amount in series[dim][value].items():
                scaled = amount.scaleb(9)
                n = int(scaled.to_integral_value())
                if n != scaled:  # more than 9 decimals is not ledger money: use the reference
                    biggest = _EXACT_LIMIT
                vid.append(i)
                day_col.append(d)
                nanos.append(n)
                biggest = max(biggest, abs(n))
        if biggest * 4 >= _EXACT_LIMIT:
            _reference_verdicts(
                dim, series[dim], data_days, days, lookback, sensitivity, min_impact, found
            )
            continue
        spend = pl.DataFrame(
            {"vid": vid, "day": day_col, "nanos": nanos},
            schema={"vid": pl.Int32, "day": pl.Date, "nanos": pl.Int64},
        )
        frame = baseline_frame(spend, len(values), data_days, days, lookback).filter(candidate)
        for day, i, med2, mad4, n, same in frame.select(
            "day", "vid", "med2", "mad4", "n", "same_weekday"
        ).iter_rows():
            value = values[i]
            base = frame_baseline(med2, mad4, n, same)
            actual = series[dim][value].get(day, Decimal(0))
            if is_anomalous(actual, base, sensitivity, min_impact):
                found[day].append((dim, value, base))
    dim_order = {d: i for i, d in enumerate(DIMENSIONS)}
    first_seen = {dim: {v: i for i, v in enumerate(series[dim])} for dim in DIMENSIONS}
    for hits in found.values():
        hits.sort(key=lambda h: (dim_order[h[0]], first_seen[h[0]][h[1]]))
    return found


def _reference_verdicts(
    dim: str,
    values: dict[object, dict[dt.date, Decimal]],
    data_days: list[dt.date],
    days: list[dt.date],
    lookback: int,
    sensitivity: Decimal,
    min_impact: Decimal,
    found: dict[dt.date, list[tuple[str, object, Baseline]]],
) -> None:
    """The exact Decimal loop, for amounts beyond what the integer path holds exactly."""
    for day in days:
        window, _, _ = baseline_days_for(data_days, day, lookback)
        if len(window) < MIN_BASELINE_DAYS:
            continue
        for value, hist in values.items():
            base = baseline(hist, window, day)
            if is_anomalous(hist.get(day, Decimal(0)), base, sensitivity, min_impact):
                found[day].append((dim, value, base))


def _driver(
    parent: dict[dt.date, Decimal],
    subs: dict[tuple[str, object], dict[dt.date, Decimal]],
    window: list[dt.date],
    day: dt.date,
    direction: int,
) -> dict[str, object] | None:
    """The sub-dimension value whose spend moved most in the anomaly's direction. A value that
    carries all of the parent's spend (an API key used by one workload only) says nothing new,
    so it is named only when no narrower value moved."""
    days = [*window, day]
    parent_total = sum((parent.get(d, Decimal(0)) for d in days), Decimal(0))
    best: tuple[bool, Decimal, str, object, Decimal, Decimal] | None = None
    for (sdim, svalue), hist in subs.items():
        actual = hist.get(day, Decimal(0))
        expected = baseline(hist, window, day).expected
        delta = (actual - expected) * direction
        if delta <= 0:
            continue
        narrower = sum((hist.get(d, Decimal(0)) for d in days), Decimal(0)) != parent_total
        key = (narrower, delta)
        if best is None or key > best[:2]:
            best = (narrower, delta, sdim, svalue, expected, actual)
    if best is None:
        return None
    _, delta, sdim, svalue, expected, actual = best
    return {
        "dimension": sdim,
        "value": _label(sdim, svalue),
        "expected_usd": expected,
        "actual_usd": actual,
        "delta_usd": delta * direction,
    }


def _anomaly_alert(
    dim: str,
    value: object,
    day: dt.date,
    actual: Decimal,
    base: Baseline,
    hist: dict[dt.date, Decimal],
    subs: dict[tuple[str, object], dict[dt.date, Decimal]],
    window: list[dt.date],
) -> Alert:
    delta = actual - base.expected
    direction = 1 if delta > 0 else -1
    driver = _driver(hist, subs, window, day, direction)
    label = _label(dim, value if isinstance(value, str) or value is None else str(value))
    scope = f"{dim}:{label}"
    how = (
        f"median of {base.days} {day.strftime('%A')}s"
        if base.same_weekday
        else f"median of the last {base.days} days"
    )
    word = "spike" if direction > 0 else "drop"
    sign = "+" if delta > 0 else "-"
    msg = (
        f"Spend {word} on {dim} {label} on {day.isoformat()}: {money(actual)} vs expected "
        f"{money(base.expected)} ({sign}{money(abs(delta))}; {how})."
    )
    if driver:
        dsign = "+" if driver["delta_usd"] > 0 else "-"  # type: ignore[operator]
        msg += (
            f" Likely driver: {driver['dimension']} {driver['value']} "
            f"({money(driver['expected_usd'])} -> {money(driver['actual_usd'])}, "  # type: ignore[arg-type]
            f"{dsign}{money(abs(driver['delta_usd']))})."  # type: ignore[arg-type]
        )
    return Alert(
        alert_id=alert_id("anomaly", scope, f"day:{day.isoformat()}"),
        kind="anomaly",
        scope=scope,
        period=f"day:{day.isoformat()}",
        severity="warning" if direction > 0 else "info",
        message=msg,
        payload={
            "dimension": dim,
            "value": label,
            "day": day,
            "actual_usd": actual,
            "expected_usd": base.expected,
            "delta_usd": delta,
            "robust_sigma_usd": base.sigma.quantize(Decimal("0.000000001")),
            "baseline_days": base.days,
            "same_weekday": base.same_weekday,
            "driver": driver,
        },
    )
