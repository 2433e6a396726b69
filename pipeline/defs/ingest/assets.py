"""Staging assets: request logs (+ OpenRouter generations), outcome events, invoice lines. Each
evaluates its checks (checks.py, invoice_checks.py) in its own step, right after the load."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline import loads
from pipeline.defs.ingest.checks import (
    OUTCOME_CHECKS,
    REQUEST_CHECKS,
    outcome_checks,
    request_checks,
)
from pipeline.defs.ingest.invoice_checks import INVOICE_CHECKS, invoice_checks
from pipeline.defs.metadata import run_days, table_metadata
from pipeline.defs.partitions import daily_partitions, single_run
from pipeline.defs.resources import LedgerConfigResource
from pipeline.sources.invoices import InvoiceError

COMMON = dict(partitions_def=daily_partitions, backfill_policy=single_run, group_name="ingest")


@dg.asset(key=["staging", "requests"], kinds={"duckdb"}, check_specs=REQUEST_CHECKS, **COMMON)
def staging_requests(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Request records of the days' dt= folders and OpenRouter generation records: every line
    loaded, duplicate or quarantined (raw.rejected_records, with file, line and reason code),
    one row per request_id reported under its UTC day, one raw.load_manifest row per file."""
    days = run_days(context)
    config = ledger.config()
    with duckdb.get_connection() as conn:
        stats = loads.load_requests(conn, config, days, run_id=context.run.run_id)
        meta = table_metadata(
            context,
            conn,
            "staging.requests",
            days,
            **{k: dg.MetadataValue.int(v) for k, v in stats.items()},
        )
        checks = list(request_checks(conn, config, days))
    if stats["rejected"]:
        context.log.warning(
            f"{stats['rejected']} line(s) quarantined in raw.rejected_records (reason codes "
            "in its reason column)"
        )
    if stats["reported_outside_range"]:
        context.log.warning(
            f"{stats['reported_outside_range']} record(s) of these folders have a UTC day just "
            "outside the run's days; rebuild that day for its marts to include them"
        )
    if stats["refused_files"]:
        context.log.warning(
            f"{stats['refused_files']} file(s) refused (see raw.load_manifest status 'refused')"
        )
    return dg.MaterializeResult(metadata=meta, check_results=checks)


@dg.asset(
    key=["staging", "outcomes"],
    kinds={"duckdb"},
    check_specs=OUTCOME_CHECKS,
    # Before staging/requests whenever both can run: the rejected-rate check evaluated in that
    # step counts the outcome lines quarantined by this load too.
    op_tags={"dagster/priority": "1"},
    **COMMON,
)
def staging_outcomes(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Outcome events (accepted or not) of the days' dt= folders, one row per event_id, every
    line accounted for like the request logs."""
    days = run_days(context)
    with duckdb.get_connection() as conn:
        stats = loads.load_outcomes(conn, ledger.config(), days, run_id=context.run.run_id)
        meta = table_metadata(
            context,
            conn,
            "staging.outcomes",
            days,
            **{k: dg.MetadataValue.int(v) for k, v in stats.items()},
        )
        checks = list(outcome_checks(conn, days))
    return dg.MaterializeResult(metadata=meta, check_results=checks)


@dg.asset(key=["staging", "invoice_lines"], kinds={"duckdb"}, check_specs=INVOICE_CHECKS, **COMMON)
def staging_invoice_lines(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Provider invoices (openai_costs, anthropic_cost_report, focus) and the platform
    statement (openrouter_activity) as FOCUS-named lines, each traceable to file and line, and
    staging.invoice_coverage (which provider x account x day an export arrived for, or was
    unreadable). Only new or changed files are parsed; a file that cannot be read is refused
    whole and named (raw.load_manifest, raw.rejected_records), and the others still load."""
    days = run_days(context)
    with duckdb.get_connection() as conn:
        try:
            stats = loads.load_invoices(conn, ledger.config(), days, run_id=context.run.run_id)
        except InvoiceError as e:
            raise dg.Failure(description=str(e)) from e
        meta = table_metadata(
            context,
            conn,
            "staging.invoice_lines",
            days,
            **{k: dg.MetadataValue.int(v) for k, v in stats.items()},
        )
        checks = list(invoice_checks(conn))
    if stats["refused"]:
        context.log.warning(
            f"{stats['refused']} invoice file(s) refused (unreadable): see raw.load_manifest "
            "and the invoice_files_readable check"
        )
    return dg.MaterializeResult(metadata=meta, check_results=checks)
