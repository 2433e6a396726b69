"""Anomaly baselines: the Decimal loop (one `baseline()` per dimension value and checked day)
against the vectorised polars `baseline_frame`, on DAYS of daily spend for VALUES dimension
values, every day checked against its trailing 28 days (same weekday when possible). Both
must give identical baselines; the script checks that on every row before printing times.

    .venv/bin/python bench/bench_anomalies.py [DAYS] [VALUES]     (default: 365 1000)
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from decimal import Decimal

import polars as pl

from pipeline.alerts import anomalies as an

LOOKBACK = 28


def synth(days: int, values: int, seed: int = 11) -> tuple[list[dt.date], list[dict]]:
    rng = random.Random(seed)
    start = dt.date(2026, 1, 1)
    data_days = [start + dt.timedelta(days=i) for i in range(days)]
    hist = []
    for _ in range(values):
        level = rng.randint(1_000, 5_000_000)  # typical day: $0.70 .. $6,500
        hist.append(
            {
                d: Decimal(level * rng.randint(700, 1300)) / Decimal(10**9)
                for d in data_days
                if rng.random() < 0.9  # some days a value has no spend (counts as zero)
            }
        )
    return data_days, hist


def loop(data_days: list[dt.date], hist: list[dict]) -> dict:
    out = {}
    for day in data_days:
        window = [d for d in data_days if day - dt.timedelta(days=LOOKBACK) <= d < day]
        if len(window) < an.MIN_BASELINE_DAYS:
            continue
        for vid, h in enumerate(hist):
            out[(day, vid)] = an.baseline(h, window, day)
    return out


def vectorised(data_days: list[dt.date], hist: list[dict]) -> pl.DataFrame:
    spend = pl.DataFrame(
        {
            "vid": [i for i, h in enumerate(hist) for _ in h],
            "day": [d for h in hist for d in h],
            "nanos": [int(v.scaleb(9)) for h in hist for v in h.values()],
        },
        schema={"vid": pl.Int32, "day": pl.Date, "nanos": pl.Int64},
    )
    return an.baseline_frame(spend, len(hist), data_days, data_days, LOOKBACK)


def main(argv: list[str]) -> int:
    days = int(argv[0]) if argv else 365
    values = int(argv[1]) if len(argv) > 1 else 1000
    data_days, hist = synth(days, values)
    # Wall time and CPU time (all threads): on a shared machine the CPU time is the steadier.
    t0, c0 = time.perf_counter(), time.process_time()
    frame = vectorised(data_days, hist)
    t_vec, c_vec = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    ref = loop(data_days, hist)
    t_loop, c_loop = time.perf_counter() - t0, time.process_time() - c0
    got = {
        (day, vid): an.frame_baseline(med2, mad4, n, same)
        for day, vid, _, med2, mad4, n, same in frame.iter_rows()
    }
    if got != ref:
        print("MISMATCH between the loop and the vectorised baselines", file=sys.stderr)
        return 1
    print(
        f"{days} days x {values} values = {len(ref):,} baselines (identical)\n"
        f"  Decimal loop:       {t_loop:7.2f} s wall, {c_loop:7.2f} s CPU\n"
        f"  polars vectorised:  {t_vec:7.2f} s wall, {c_vec:7.2f} s CPU "
        f"({t_loop / t_vec:.1f}x faster)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
