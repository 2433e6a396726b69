"""Checks beside the reconciliation marts: variance within tolerance, one result per day
(warning), and split billing adding up to the invoices plus the statement (blocking, to the
cent). Both are evaluated inside their mart's step (`check_specs=` in assets.py) and report one
evaluation per day of the run (not one for the whole range): re-running one day replaces that
day's result and never hides another day's failure."""

import datetime as dt
import warnings
from collections.abc import Iterator

import dagster as dg
import duckdb

from pipeline.defs.partitions import daily_partitions
from pipeline.loads import DayRange
from pipeline.sql import load_sql
from routing_core.config import LedgerConfig

RECONCILIATION = dg.AssetKey(["marts", "reconciliation_daily"])
SPLIT = dg.AssetKey(["marts", "split_billing_daily"])

# One result per day needs a partitioned check spec, a Dagster preview feature (`@asset_check`
# takes the same `partitions_def` without warning about it): no warning on every import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    VARIANCE = dg.AssetCheckSpec(
        "variance_within_tolerance",
        asset=RECONCILIATION,
        partitions_def=daily_partitions,
        description="Per day: every reconciliation cell within tolerance (max of "
        "pipeline.variance_tolerance_usd and variance_tolerance_pct of expected) and every export "
        "readable; the metadata gives each cause's dollars and the variance no cause explains",
    )
    SPLIT_ADDS_UP = dg.AssetCheckSpec(
        "split_billing_adds_up",
        asset=SPLIT,
        blocking=True,
        partitions_def=daily_partitions,
        description="Per day: split billing = invoice Usage lines + statement, to the cent",
    )


def _md(rows: list[tuple], cols: list[str]) -> dg.MetadataValue:
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "\n".join("| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows)
    return dg.MetadataValue.md(head + body if rows else "none")


def variance_within_tolerance(
    conn: duckdb.DuckDBPyConnection, config: LedgerConfig, days: DayRange
) -> Iterator[dg.AssetCheckEvaluation]:
    """`VARIANCE` for each day (WARN: a variance is reported, the run goes on)."""
    cfg = config.pipeline
    cur = conn.execute(load_sql("checks/reconciliation_day_status"), days.params)
    cols = [d[0] for d in cur.description]
    per_day = {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}
    causes: dict[dt.date, list[tuple]] = {}
    for day, cause, usd in conn.execute(
        "SELECT day, likely_cause, sum(abs(variance_usd)) FROM marts.reconciliation_daily "
        "WHERE day BETWEEN $start AND $end AND likely_cause IS NOT NULL "
        "AND variance_usd IS NOT NULL GROUP BY ALL ORDER BY ALL",
        days.params,
    ).fetchall():
        causes.setdefault(day, []).append((cause, usd))
    worst: dict[dt.date, dg.MetadataValue] = {}
    for d in per_day:
        cur = conn.execute(load_sql("checks/worst_variances"), {"day": d})
        worst[d] = _md(cur.fetchall(), [c[0] for c in cur.description])
    for key in days.days:
        day = dt.date.fromisoformat(key)
        row = per_day.get(day)
        # unlogged_usage is reported by marts.unattributed_usage; this check is about cells
        # with logs (over/under billed) and exports that could not be read.
        off = row["off"] + row["invoice_unreadable"] if row else 0
        yield dg.AssetCheckEvaluation(
            asset_key=VARIANCE.asset_key,
            check_name=VARIANCE.name,
            passed=off == 0,
            partition=key,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "day": key,
                **{
                    f"cells_{k}": int(row[k]) if row else 0
                    for k in (
                        "matched",
                        "off",
                        "unlogged_usage",
                        "missing_invoice",
                        "invoice_unreadable",
                    )
                },
                "variance_usd": f"{row['variance_usd']:f}" if row else "0",
                "unexplained_usd": f"{row['unexplained_usd']:f}" if row else "0",
                "variance_by_cause": _md(causes.get(day, []), ["likely_cause", "abs_variance_usd"]),
                "tolerance": f"max(${cfg.variance_tolerance_usd}, "
                f"{cfg.variance_tolerance_pct}% of expected)",
                "worst_cells": worst.get(day, dg.MetadataValue.md("none")),
            },
        )


def split_billing_adds_up(
    conn: duckdb.DuckDBPyConnection, days: DayRange
) -> Iterator[dg.AssetCheckEvaluation]:
    """`SPLIT_ADDS_UP` for each day, blocking: a day whose money does not add up fails the
    step (what depends on it does not run), and re-running another day cannot mark it passed."""
    cur = conn.execute(load_sql("checks/split_totals"), days.params)
    cols = [d[0] for d in cur.description]
    by_day = {r[0]: r for r in cur.fetchall()}
    for key in days.days:
        row = by_day.get(dt.date.fromisoformat(key))
        yield dg.AssetCheckEvaluation(
            asset_key=SPLIT_ADDS_UP.asset_key,
            check_name=SPLIT_ADDS_UP.name,
            passed=not (row and row[-1]),
            partition=key,
            blocking=True,
            metadata={"day": key, "totals": _md([row] if row else [], cols)},
        )
