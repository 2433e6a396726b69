"""`byok-ledger demo`: the whole product end to end on a fresh clone, no services to start.

Simulate traffic through the real router against local fake providers (with faults and
frictions), materialize the Dagster pipeline for every day, evaluate alerts against a local
webhook receiver, render the finance reports, then print where everything is and a summary.
Each step is the same code path a user runs by hand (`simulate`, `run`, `alerts`, `report`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from decimal import Decimal
from pathlib import Path

DEMO_REQUESTS_PER_DAY = 300


def _step(n: int, title: str) -> float:
    print(f"\n[{n}/5] {title}", flush=True)
    return time.perf_counter()


def _done(t0: float) -> None:
    print(f"      done in {time.perf_counter() - t0:.1f}s", flush=True)


def _money(v: object) -> str:
    from routing_core.money import format_usd  # the one "$1,234.56" / "-$0.77" spelling

    return format_usd(None if v is None else Decimal(v))  # type: ignore[arg-type]


def _months(start: dt.date, end: dt.date) -> list[str]:
    from routing_core.calendar import months_between

    return months_between(start, end)


def _summary(duckdb_path: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        layers = conn.execute(
            """
            SELECT sum(provider_billed_usd), sum(provider_estimated_usd),
                   sum(platform_fee_usd), sum(platform_credits_usd), sum(total_usd),
                   sum(requests)
            FROM marts.split_billing_daily
            """
        ).fetchall()
        recon = conn.execute(
            """
            SELECT status, count(*), sum(variance_usd)
            FROM marts.reconciliation_daily GROUP BY status ORDER BY status
            """
        ).fetchall()
        # What explains the variance of the cells that are not matched, largest first.
        causes = conn.execute(
            """
            SELECT coalesce(likely_cause, 'unknown'), count(*), sum(abs(variance_usd))
            FROM marts.reconciliation_daily WHERE status <> 'matched'
            GROUP BY 1 ORDER BY 3 DESC, 1
            """
        ).fetchall()
    return layers, recon, causes


def _alerts(duckdb_path: Path) -> list[tuple]:
    """(kind, severity, alerts, delivered) from the alert ledger, critical first."""
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        try:
            return conn.execute(
                """
                SELECT kind, severity, count(*), count(delivered_at) FROM marts.alerts
                GROUP BY kind, severity
                ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                         kind
                """
            ).fetchall()
        except duckdb.CatalogException:  # the run failed before the alert assets
            return []


def demo(args: argparse.Namespace) -> int:
    """Handler of `byok-ledger demo [--out DIR] [--days N] [--requests-per-day N] [--seed S]`."""
    from pipeline.alerts import WebhookReceiver
    from pipeline.cli import run_ledger
    from reports.data import ReportError
    from reports.render import render_last_days, render_month
    from routing_core.config import load_config
    from simulator.run import run_simulation

    out = Path(args.out).resolve()
    rpd = args.requests_per_day or DEMO_REQUESTS_PER_DAY
    t_all = time.perf_counter()
    print(f"byok-ledger demo: {args.days} days x ~{rpd} requests/day, seed {args.seed} -> {out}")

    t0 = _step(1, "simulate traffic through the router against local fake providers")
    try:
        sim = run_simulation(
            args.config, out, days=args.days, requests_per_day=rpd, seed=args.seed, progress=True
        )
    except (FileNotFoundError, ValueError) as e:  # config errors: byok_ledger.cli.main
        print(f"byok-ledger demo: {e}", file=sys.stderr)
        return 2
    for line in sim.summary_lines():
        print(f"      {line}")
    _done(t0)

    t0 = _step(2, "materialize the pipeline through Dagster, alerts included (byok-ledger run)")
    # The run's alert assets deliver to a local receiver instead of the config's webhook.
    with WebhookReceiver() as receiver:
        status = run_ledger(sim.config_path, webhook_url=receiver.url)
        received = len(receiver.received)
    _done(t0)
    if status == 2:
        return status
    cfg = load_config(sim.config_path)

    t0 = _step(3, "alerts the run evaluated and delivered to a local webhook receiver")
    alert_rows = _alerts(cfg.duckdb_path)
    for kind, severity, n, delivered in alert_rows:
        print(f"      {kind:<18} {severity:<9} {n:>4} alert(s), {delivered} delivered")
    print(f"      webhook receiver {receiver.url} got {received} alert(s)")
    _done(t0)

    t0 = _step(4, "render the finance reports")
    try:
        reports = [render_month(cfg, m) for m in _months(sim.start, sim.end)]
        reports.append(render_last_days(cfg, 7))
    except ReportError as e:  # only when the run above failed before the marts
        print(f"byok-ledger demo: no report: {e}", file=sys.stderr)
        return status or 1
    for p in reports:
        print(f"      {p}")
    _done(t0)

    _step(5, "summary")
    layers, recon, causes = _summary(cfg.duckdb_path)
    billed, estimated, fee, credits, total, requests = layers[0]
    print(f"      requests                          {requests:>12,}")
    print(
        f"      provider invoices (own accounts)  {_money(billed):>12}   (router estimate {_money(estimated)})"
    )
    print(f"      platform BYOK fees                {_money(fee):>12}")
    print(f"      platform shared-capacity credits  {_money(credits):>12}")
    print(f"      total                             {_money(total):>12}")
    print("      reconciliation cells:")
    for st, n, var in recon:
        print(f"        {st:<16} {n:>5}   variance {_money(var)}")
    if causes:
        print("      variance of the unmatched cells by likely cause (marts.reconciliation_daily):")
    for cause, n, var in causes:
        print(f"        {cause:<22} {n:>5}   {_money(var)}")
    kinds: dict[str, int] = {}
    for kind, _severity, n, _delivered in alert_rows:
        kinds[kind] = kinds.get(kind, 0) + n
    print("      alerts: " + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"))
    print()
    print(f"  DuckDB file  {cfg.duckdb_path}")
    print(f"  report       {reports[-2] if len(reports) > 1 else reports[0]}")
    print(f"  last 7 days  {reports[-1]}")
    print(
        '  query        .venv/bin/python -c "import duckdb; '
        f"print(duckdb.connect('{cfg.duckdb_path}', read_only=True)"
        ".sql('FROM marts.reconciliation_daily LIMIT 10'))\""
    )
    print(
        f"\nbyok-ledger demo: finished in {time.perf_counter() - t_all:.1f}s"
        + ("" if status == 0 else " (a blocking pipeline check failed: see above)")
    )
    return status
