"""Reconciliation and split-billing assets (the marts are described in docs/marts.md)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline import loads
from pipeline.defs.metadata import rebuild_table, run_days, table_metadata
from pipeline.defs.partitions import daily_partitions, single_run
from pipeline.defs.resources import LedgerConfigResource

COMMON = dict(partitions_def=daily_partitions, backfill_policy=single_run, group_name="reconcile")
REQUESTS = dg.AssetKey(["staging", "requests"])
INVOICES = dg.AssetKey(["staging", "invoice_lines"])
GROUPS = dg.AssetKey(["intermediate", "request_groups"])
RECONCILIATION = dg.AssetKey(["marts", "reconciliation_daily"])


@dg.asset(key=GROUPS, deps=[REQUESTS, INVOICES], kinds={"duckdb"}, **COMMON)
def request_groups(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Requests aggregated to the allocation grain, each BYOK group tied to the invoice account
    it reconciles against (account matching: every identifier on both sides agrees)."""
    return rebuild_table(
        context, ledger, duckdb, "intermediate.request_groups", loads.build_request_groups
    )


@dg.asset(key=RECONCILIATION, deps=[GROUPS, INVOICES, REQUESTS], kinds={"duckdb"}, **COMMON)
def reconciliation_daily(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Expected (logs) vs billed (invoice Usage lines) per day x provider x account x
    upstream_model, with variance, status, likely cause and a one-sentence explanation (and
    the log writers' empty hours in marts.reconciliation_log_gaps)."""
    return rebuild_table(
        context, ledger, duckdb, "marts.reconciliation_daily", loads.build_reconciliation
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["marts", "split_billing_daily"],
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
    **COMMON,
)
def split_billing(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
):
    """Allocates each invoice cell and statement cell over the logged requests behind it
    (largest remainder at 1e-9 USD: money is conserved exactly)."""
    days = run_days(context)
    with duckdb.get_connection() as conn:
        loads.build_split_billing(conn, ledger.config(), days)
        for name in ("split_billing_daily", "unattributed_usage", "non_usage_charges"):
            key = dg.AssetKey(["marts", name])
            yield dg.MaterializeResult(
                asset_key=key,
                metadata=table_metadata(context, conn, f"marts.{name}", days, asset_key=key),
            )
