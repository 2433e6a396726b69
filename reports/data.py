"""Everything a finance report shows, read from the marts with the SQL in `sql/reports/`
(and the budget spend query of `sql/alerts/`). Money stays Decimal; the rendering layer only
formats it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from pipeline.alerts.budgets import daily_spend
from pipeline.alerts.periods import period_bounds
from pipeline.sql import load_sql
from routing_core.config import LedgerConfig

REQUIRED_MARTS = ("split_billing_daily", "reconciliation_daily")
ZERO = Decimal(0)


class ReportError(Exception):
    """A problem the user must fix before a report can be rendered (the message says how)."""


Row = dict[str, Any]


@dataclass
class Totals:
    provider_usd: Decimal = ZERO
    fee_usd: Decimal = ZERO
    credits_usd: Decimal = ZERO
    total_usd: Decimal = ZERO
    estimated_usd: Decimal = ZERO
    requests: int = 0
    days: int = 0


@dataclass
class ReportData:
    title: str
    kind: str  # "month" | "rolling"
    start: dt.date
    end: dt.date
    prev_start: dt.date
    prev_end: dt.date
    data_first: dt.date | None
    data_last: dt.date | None
    generated_at: dt.datetime
    totals: Totals
    prev_totals: Totals
    daily: list[Row]
    splits: dict[str, list[Row]]
    credential_daily: list[Row]
    recon_status: list[Row]
    variances: list[Row]
    unattributed: list[Row]
    cost_per_accepted: list[Row] | None
    routing_keys: list[Row] | None
    fallback_daily: list[Row] | None
    non_usage: list[Row] | None
    violations: list[Row] | None
    budgets: list[Row] | None
    alerts: list[Row] | None
    burn_down: list[Row] = field(default_factory=list)  # per monthly budget: cumulative spend
    missing: list[str] = field(default_factory=list)  # optional marts not built yet
    platform: Any = None  # config.platform: explains days without a BYOK fee (free allowance)
    # Reconciliation variance per likely cause, and requests by where their usage came from.
    recon_causes: list[Row] = field(default_factory=list)
    usage_sources: list[Row] = field(default_factory=list)
    tolerance: str = ""  # the reconciliation tolerance, in words


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the ledger read-only: rendering a report never changes it."""
    if not path.exists():
        raise ReportError(
            f"DuckDB file {path} does not exist: run `byok-ledger run --config ...` first to "
            "build the marts"
        )
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as e:
        raise ReportError(f"cannot open {path} read-only: {e}") from None
    marts = {r[0] for r in conn.execute(load_sql("reports/available_marts")).fetchall()}
    missing = [m for m in REQUIRED_MARTS if m not in marts]
    if missing:
        conn.close()
        names = ", ".join(f"marts.{m}" for m in missing)
        raise ReportError(f"{path} has no {names}: run `byok-ledger run --config ...` first")
    explained = conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'marts' "
        "AND table_name = 'reconciliation_daily' AND column_name = 'likely_cause'"
    ).fetchone()[0]
    if not explained:
        conn.close()
        raise ReportError(
            f"{path} was built by an older byok-ledger (marts.reconciliation_daily has no "
            "likely_cause): run `byok-ledger run --config ...` again to rebuild the marts"
        )
    return conn


def _rows(conn: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> list[Row]:
    cur = conn.execute(load_sql(name), params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def data_range(conn: duckdb.DuckDBPyConnection) -> tuple[dt.date | None, dt.date | None]:
    first, last = conn.execute(load_sql("reports/data_range")).fetchone()
    return first, last


def _totals(conn: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> Totals:
    [row] = _rows(conn, "reports/layer_totals", {"start": start, "end": end})
    return Totals(
        **{k: (int(v) if k in ("requests", "days") else Decimal(v)) for k, v in row.items()}
    )


SPLIT_DIMENSIONS = ("environment", "app", "workload", "api_key", "provider", "model")


def load(
    conn: duckdb.DuckDBPyConnection,
    config: LedgerConfig,
    *,
    title: str,
    kind: str,
    start: dt.date,
    end: dt.date,
    prev_start: dt.date,
    prev_end: dt.date,
) -> ReportData:
    """Read every section of the report for [start, end] (previous period for the deltas)."""
    marts = {r[0] for r in conn.execute(load_sql("reports/available_marts")).fetchall()}
    p = {"start": start, "end": end}
    missing: list[str] = []

    def optional(mart: str, query: str) -> list[Row] | None:
        if mart not in marts:
            missing.append(mart)
            return None
        return _rows(conn, f"reports/{query}", p)

    first, last = data_range(conn)
    data = ReportData(
        title=title,
        kind=kind,
        start=start,
        end=end,
        prev_start=prev_start,
        prev_end=prev_end,
        data_first=first,
        data_last=last,
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None),
        totals=_totals(conn, start, end),
        prev_totals=_totals(conn, prev_start, prev_end),
        daily=_rows(conn, "reports/daily_layers", p),
        splits={d: _rows(conn, "reports/split_by", {**p, "dim": d}) for d in SPLIT_DIMENSIONS},
        credential_daily=_rows(conn, "reports/credential_daily", p),
        recon_status=_rows(conn, "reports/reconciliation_status", p),
        variances=_rows(conn, "reports/reconciliation_variances", p),
        unattributed=optional("unattributed_usage", "unattributed") or [],
        cost_per_accepted=optional("cost_per_accepted_output", "cost_per_accepted"),
        routing_keys=optional("routing_health", "routing_health_by_key"),
        fallback_daily=_rows(conn, "reports/fallback_daily", p)
        if "routing_health" in marts
        else None,
        non_usage=optional("non_usage_charges", "non_usage_charges"),
        violations=optional("policy_violations", "policy_violations"),
        budgets=optional("budget_status", "budget_status"),
        alerts=optional("alerts", "alerts"),
        missing=missing,
        platform=config.platform,
    )
    data.burn_down = _burn_down(conn, config, start, min(end, last) if last else end)
    data.recon_causes = _rows(conn, "reports/reconciliation_causes", p)
    tol = config.pipeline
    data.tolerance = (
        f"the larger of ${tol.variance_tolerance_usd} and {tol.variance_tolerance_pct}% of the "
        "expected amount"
    )
    has_source = conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'staging' "
        "AND table_name = 'requests' AND column_name = 'usage_source'"
    ).fetchone()[0]
    data.usage_sources = _rows(
        conn, "reports/usage_sources" if has_source else "reports/usage_sources_legacy", p
    )
    return data


def _burn_down(
    conn: duckdb.DuckDBPyConnection, config: LedgerConfig, start: dt.date, end: dt.date
) -> list[Row]:
    """Cumulative spend per day (through `end`, the last day with data) for each monthly
    budget, with the run-rate forecast for the month's end while the month is open."""
    out: list[Row] = []
    month_start, month_end = period_bounds("monthly", end)
    for b in config.budgets:
        if b.period != "monthly":
            continue
        # The same spend the budget alerts see.
        spend = daily_spend(conn, config, b, month_start, end)
        points, acc = [], ZERO
        day = month_start
        while day <= end:
            acc += spend.get(day, ZERO)
            points.append((day, acc))
            day += dt.timedelta(days=1)
        elapsed = (end - month_start).days + 1
        forecast = acc * ((month_end - month_start).days + 1) / elapsed if end < month_end else None
        out.append(
            {
                "forecast_usd": forecast,
                "budget_id": b.id,
                "scope": b.scope,
                "match": b.match,
                "limit_usd": b.usd,
                "month_start": month_start,
                "month_end": month_end,
                "points": points,
                "spent_usd": acc,
            }
        )
    return out
