"""Reconciliation and split-billing assets (the marts are described in docs/marts.md), with
their per-day checks (checks.py) evaluated in the same step."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline import loads
from pipeline.defs.metadata import per_day_check, rebuild_table, run_days, table_metadata
from pipeline.defs.partitions import daily_partitions, single_run
from pipeline.defs.reconcile.checks import (
    RECONCILIATION,
    SPLIT,
    SPLIT_ADDS_UP,
    VARIANCE,
    split_billing_adds_up,
    variance_within_tolerance,
)
from pipeline.defs.resources import LedgerConfigResource

COMMON = dict(partitions_def=daily_partitions, backfill_policy=single_run, group_name="reconcile")
REQUESTS = dg.AssetKey(["staging", "requests"])
INVOICES = dg.AssetKey(["staging", "invoice_lines"])
GROUPS = dg.AssetKey(["intermediate", "request_groups"])


@dg.asset(key=GROUPS, deps=[REQUESTS, INVOICES], kinds={"duckdb"}, **COMMON)
def request_groups(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Requests aggregated to the allocation grain, each BYOK group tied to the invoice account
    it reconciles against (account matching: every identifier on both sides agrees)."""
    return rebuild_table(
        context, ledger, duckdb, "intermediate.request_groups", loads.build_request_groups
    )


@dg.asset(
    key=RECONCILIATION,
    deps=[GROUPS, INVOICES, REQUESTS],
    kinds={"duckdb"},
    check_specs=[VARIANCE],
    **COMMON,
)
def reconciliation_daily(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
):
    """Expected (logs) vs billed (invoice Usage lines) per day x provider x account x
    upstream_model, with variance, status, likely cause and a one-sentence explanation (and
    the log writers' empty hours in marts.reconciliation_log_gaps)."""
    yield rebuild_table(
        context, ledger, duckdb, "marts.reconciliation_daily", loads.build_reconciliation
    )
    with duckdb.get_connection() as conn:
        evaluations = variance_within_tolerance(conn, ledger.config(), run_days(context))
        yield from per_day_check(context, VARIANCE, evaluations)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SPLIT,
            deps=[GROUPS, INVOICES],
            kinds={"duckdb"},
            description="Who bills what: provider invoice vs platform fee and credits, "
            "allocated down to environment, app, API key, workload, member and model.",
        ),
        dg.AssetSpec(
            ["marts", "unattributed_usage"],
            # Its rows carry the cause reconciliation found for the same cell.
            deps=[GROUPS, INVOICES, RECONCILIATION],
            kinds={"duckdb"},
            description="Invoice and statement cost no logged request explains.",
        ),
        dg.AssetSpec(
            ["marts", "non_usage_charges"],
            deps=[INVOICES],
            kinds={"duckdb"},
            description="Credits, tax, purchases and adjustments, beside usage.",
        ),
    ],
    check_specs=[SPLIT_ADDS_UP],
    **COMMON,
)
def split_billing(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
):
    """Allocates each invoice cell and statement cell over the logged requests behind it
    (largest remainder at 1e-9 USD: money is conserved exactly). A day whose split does not
    add up fails this step after its marts are written: nothing downstream runs."""
    days = run_days(context)
    with duckdb.get_connection() as conn:
        loads.build_split_billing(conn, ledger.config(), days)
        for name in ("split_billing_daily", "unattributed_usage", "non_usage_charges"):
            key = dg.AssetKey(["marts", name])
            yield dg.MaterializeResult(
                asset_key=key,
                metadata=table_metadata(context, conn, f"marts.{name}", days, asset_key=key),
            )
        yield from per_day_check(context, SPLIT_ADDS_UP, split_billing_adds_up(conn, days))
