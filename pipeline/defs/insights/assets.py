"""Insight marts built from the requests and split billing (docs/marts.md)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline import loads
from pipeline.defs.insights.checks import NO_POLICY_VIOLATIONS, no_policy_violations
from pipeline.defs.metadata import rebuild_table
from pipeline.defs.partitions import daily_partitions, single_run
from pipeline.defs.resources import LedgerConfigResource

COMMON = dict(partitions_def=daily_partitions, backfill_policy=single_run, group_name="insights")
REQUESTS = dg.AssetKey(["staging", "requests"])


def _build(
    context: dg.AssetExecutionContext,
    ledger: LedgerConfigResource,
    duckdb: DuckDBResource,
    name: str,
    day_col: str = "day",
    checks=None,
) -> dg.MaterializeResult:
    def build(conn, cfg, days):
        return loads.build_mart(conn, cfg, days, name)

    return rebuild_table(context, ledger, duckdb, f"marts.{name}", build, day_col, checks)


@dg.asset(
    key=["marts", "cost_per_accepted_output"],
    kinds={"duckdb"},
    deps=[
        REQUESTS,
        dg.AssetKey(["staging", "outcomes"]),
        dg.AssetKey(["marts", "split_billing_daily"]),
    ],
    **COMMON,
)
def cost_per_accepted_output(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Total cost (failed attempts, retries, fallbacks and rejected outputs included) per
    accepted output, per day x workload x environment x model."""
    return _build(context, ledger, duckdb, "cost_per_accepted_output", "period")


@dg.asset(
    key=NO_POLICY_VIOLATIONS.asset_key,
    kinds={"duckdb"},
    deps=[REQUESTS],
    check_specs=[NO_POLICY_VIOLATIONS],
    **COMMON,
)
def policy_violations(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Requests that broke policy (ZDR, strict BYOK, key filters, environment crossing), each
    row explaining itself. Expected empty."""
    return _build(context, ledger, duckdb, "policy_violations", checks=no_policy_violations)


@dg.asset(key=["marts", "routing_health"], kinds={"duckdb"}, deps=[REQUESTS], **COMMON)
def routing_health(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Fallback rate, error rate, rate-limit hits and BYOK vs shared share per provider, key
    and day."""
    return _build(context, ledger, duckdb, "routing_health")
