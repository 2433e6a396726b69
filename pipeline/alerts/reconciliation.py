"""The `reconciliation` alert rule: one alert per day whose unexplained reconciliation
variance (cells whose likely cause is `unknown`) exceeds `alerts.min_impact_usd`.

A plain function over a DuckDB connection and the config, returning alerts in the shared
model: the caller (the alerts evaluation, or its Dagster asset) records them in the alert
ledger, which sends each once. The alert id depends only on the day, so re-evaluating, or a
re-run that changes the amount, never alerts twice for the same day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb

from pipeline.alerts.model import Alert, alert_id, money
from pipeline.sql import load_sql
from routing_core.config import LedgerConfig

KIND = "reconciliation"
SCOPE = "reconciliation:unexplained"
# Cells listed in one alert's message and payload (largest first); the rest are counted.
MAX_CELLS = 5


def evaluate_reconciliation(
    conn: duckdb.DuckDBPyConnection, config: LedgerConfig, as_of: dt.date, window_days: int
) -> list[Alert]:
    """Alerts for the days (as_of - window_days, as_of] whose unexplained variance, summed
    as absolute dollars over the day's cells, exceeds `alerts.min_impact_usd`."""
    start = as_of - dt.timedelta(days=max(window_days, 1) - 1)
    threshold = config.alerts.min_impact_usd
    rows = conn.execute(
        load_sql("alerts/reconciliation_unexplained"), {"start": start, "end": as_of}
    ).fetchall()
    by_day: dict[dt.date, list[tuple]] = {}
    for row in rows:
        by_day.setdefault(row[0], []).append(row[1:])
    alerts = []
    for day, cells in sorted(by_day.items()):
        total = sum((abs(Decimal(c[5])) for c in cells), Decimal(0))
        if total <= threshold:
            continue
        cells.sort(key=lambda c: (-abs(Decimal(c[5])), c[0], c[1] or "", c[2] or ""))
        top = cells[:MAX_CELLS]
        more = len(cells) - len(top)
        listed = "; ".join(
            f"{c[0]} {c[2] or '?'} on {c[1] or 'no account'}: billed {money(c[4])} "
            f"vs {money(c[3])} logged"
            for c in top
        )
        message = (
            f"Reconciliation on {day}: {money(total)} of variance between invoices and logs "
            f"has no known cause (above alerts.min_impact_usd {money(threshold)}) in "
            f"{len(cells)} cell{'s' if len(cells) != 1 else ''}: {listed}"
            + (f"; and {more} more" if more else "")
            + ". Compare those invoice lines with the logs of that day."
        )
        alerts.append(
            Alert(
                alert_id=alert_id(KIND, SCOPE, f"day:{day.isoformat()}"),
                kind=KIND,
                scope=SCOPE,
                period=f"day:{day.isoformat()}",
                severity="warning",
                message=message,
                payload={
                    "day": day,
                    "unexplained_usd": total,
                    "threshold_usd": threshold,
                    "cells": [
                        {
                            "provider": c[0],
                            "account": c[1],
                            "upstream_model": c[2],
                            "expected_usd": c[3],
                            "billed_usd": c[4],
                            "variance_usd": c[5],
                            "status": c[6],
                            "explanation": c[7],
                        }
                        for c in top
                    ],
                },
            )
        )
    return alerts
