"""Checks beside the reconciliation marts: variance within tolerance (warning) and split
billing adding up to the invoices plus the statement (blocking, to the cent)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.defs.metadata import run_days
from pipeline.defs.resources import LedgerConfigResource
from pipeline.sql import load_sql


def _md(rows: list[tuple], cols: list[str]) -> dg.MetadataValue:
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "\n".join("| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows)
    return dg.MetadataValue.md(head + body if rows else "none")


@dg.asset_check(
    asset=dg.AssetKey(["marts", "reconciliation_daily"]),
    description="Every reconciliation cell within pipeline.variance_tolerance_pct/usd",
)
def variance_within_tolerance(
    context: dg.AssetCheckExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.AssetCheckResult:
    days = run_days(context)
    with duckdb.get_connection() as conn:
        counts = dict(
            conn.execute(
                "SELECT status, count(*) FROM marts.reconciliation_daily "
                "WHERE day BETWEEN $start AND $end GROUP BY 1",
                days.params,
            ).fetchall()
        )
        cur = conn.execute(load_sql("checks/worst_variances"), days.params)
        cols = [d[0] for d in cur.description]
        worst = cur.fetchall()
    bad = counts.get("over_billed", 0) + counts.get("under_billed", 0)
    cfg = ledger.config().pipeline
    return dg.AssetCheckResult(
        passed=bad == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            **{f"cells_{k}": int(v) for k, v in sorted(counts.items())},
            "tolerance": f"{cfg.variance_tolerance_pct}% or ${cfg.variance_tolerance_usd}",
            "worst_cells": _md(worst, cols),
        },
    )


@dg.asset_check(
    asset=dg.AssetKey(["marts", "split_billing_daily"]),
    blocking=True,
    description="Split billing = invoice Usage lines + statement, per invoiced day",
)
def split_billing_adds_up(
    context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
) -> dg.AssetCheckResult:
    days = run_days(context)
    with duckdb.get_connection() as conn:
        cur = conn.execute(load_sql("checks/split_totals"), days.params)
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    off = [r for r in rows if r[-1]]
    return dg.AssetCheckResult(
        passed=not off,
        metadata={
            "days_checked": len(rows),
            "days_off": len(off),
            "totals": _md(rows[:31], cols),
        },
    )
