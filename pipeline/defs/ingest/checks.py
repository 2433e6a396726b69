"""Checks on ingestion: the rejected-record rate stays under `pipeline.max_rejected_pct`."""

from decimal import Decimal

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.defs.metadata import run_days
from pipeline.defs.resources import LedgerConfigResource
from pipeline.sql import load_sql


@dg.asset_check(asset=dg.AssetKey(["staging", "requests"]), blocking=True)
def rejected_rate_under_threshold(
    context: dg.AssetCheckExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.AssetCheckResult:
    """Malformed log lines (torn last lines excepted) stay under `pipeline.max_rejected_pct` of
    the lines read; above it the run stops before the marts (something is wrong upstream)."""
    days = run_days(context)
    limit = ledger.config().pipeline.max_rejected_pct
    with duckdb.get_connection() as conn:
        lines, rejected = conn.execute(load_sql("checks/rejected_rate"), days.params).fetchone()
        worst = conn.execute(
            "SELECT file, line, error FROM raw.rejected_records "
            "WHERE day BETWEEN $start AND $end AND NOT torn ORDER BY file, line LIMIT 10",
            days.params,
        ).fetchall()
    pct = Decimal(rejected) * 100 / Decimal(lines) if lines else Decimal(0)
    return dg.AssetCheckResult(
        passed=pct <= limit,
        metadata={
            "lines_read": int(lines),
            "rejected": int(rejected),
            "rejected_pct": float(round(pct, 4)),
            "max_rejected_pct": float(limit),
            "examples": dg.MetadataValue.md(
                "\n".join(f"- `{f}` line {ln}: {err}" for f, ln, err in worst) or "none"
            ),
        },
    )
