"""The alert ledger (`marts.alerts`) and `marts.budget_status`: create, record, and track
delivery so each alert is delivered once and failures are retried on the next run."""

from __future__ import annotations

import datetime as dt
import json

import duckdb

from pipeline.alerts.budgets import BudgetStatus
from pipeline.alerts.model import Alert, jsonable
from pipeline.alerts.queries import sql


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for name in ("create_schema", "create_alerts", "create_budget_status"):
        conn.execute(sql(name))


def ledger_state(conn: duckdb.DuckDBPyConnection) -> dict[str, bool]:
    """alert_id -> delivered?"""
    return {aid: bool(done) for aid, done in conn.execute(sql("ledger_state")).fetchall()}


def record_new(conn: duckdb.DuckDBPyConnection, alerts: list[Alert], now: dt.datetime) -> None:
    for a in alerts:
        conn.execute(
            sql("insert_alert"),
            {
                "alert_id": a.alert_id,
                "created_at": now,
                "kind": a.kind,
                "scope": a.scope,
                "period": a.period,
                "severity": a.severity,
                "message": a.message,
                "payload": json.dumps(jsonable(a.payload), sort_keys=True),
            },
        )


def pending(conn: duckdb.DuckDBPyConnection) -> list[Alert]:
    """Recorded, not yet delivered: new alerts and earlier failed deliveries."""
    out = []
    for aid, kind, scope, period, severity, message, payload, _attempts in conn.execute(
        sql("pending_alerts")
    ).fetchall():
        out.append(
            Alert(
                alert_id=aid,
                kind=kind,
                scope=scope,
                period=period,
                severity=severity,
                message=message,
                payload=json.loads(payload),
            )
        )
    return out


def record_delivery(
    conn: duckdb.DuckDBPyConnection,
    alert_id: str,
    attempts: int,
    delivered_at: dt.datetime | None,
    error: str | None,
) -> None:
    conn.execute(
        sql("record_delivery"),
        {
            "alert_id": alert_id,
            "attempts": attempts,
            "delivered_at": delivered_at,
            "last_error": error,
        },
    )


def write_budget_status(
    conn: duckdb.DuckDBPyConnection,
    statuses: list[BudgetStatus],
    budget_ids: list[str],
    now: dt.datetime,
) -> None:
    """Replace the evaluated periods' rows in one transaction (idempotent)."""
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(sql("prune_budget_status"), {"budget_ids": budget_ids})
        conn.execute(sql("uncurrent_budget_status"))
        for st in statuses:
            conn.execute(
                sql("upsert_budget_status"),
                {**st.figures(), "is_current": st.is_current, "evaluated_at": now},
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
