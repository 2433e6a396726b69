"""One alert evaluation: budgets, anomalies and reconciliation variances as of the last day in
the marts (or `as_of`), new alerts recorded in `marts.alerts`, undelivered ones POSTed to the
webhook, critical first."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from pipeline.alerts import ledger
from pipeline.alerts.anomalies import evaluate_anomalies
from pipeline.alerts.budgets import BudgetStatus, evaluate_budgets
from pipeline.alerts.delivery import deliver
from pipeline.alerts.model import Alert
from pipeline.alerts.queries import sql
from routing_core.config import Alerts, LedgerConfig

if TYPE_CHECKING:  # imported when there is a webhook to deliver to
    import httpx

# Days re-examined each run: a missed daily run, or a late invoice that moves spend, is caught
# up without re-alerting (ids are deterministic).
DEFAULT_WINDOW_DAYS = 7


class AlertsError(Exception):
    """A problem the user must fix before alerts can be evaluated (message says what)."""


@dataclass
class EvaluationResult:
    as_of: dt.date | None
    evaluated: list[Alert] = field(default_factory=list)  # everything found this run
    new: list[Alert] = field(default_factory=list)  # not in the ledger before
    delivered: list[Alert] = field(default_factory=list)
    failed: list[tuple[Alert, str]] = field(default_factory=list)
    # Not attempted this run because the webhook had just failed: retried on the next run.
    deferred: list[Alert] = field(default_factory=list)
    budget_status: list[BudgetStatus] = field(default_factory=list)
    dry_run: bool = False
    webhook_configured: bool = True
    # Why there is no webhook URL (names the key or the environment variable, never a URL).
    webhook_missing: str | None = None


def resolve_webhook_url(alerts: Alerts) -> tuple[str | None, str | None]:
    """(url, None), or (None, why not): `alerts.webhook_url`, else the environment variable
    `alerts.webhook_url_env` names, read now (so a rotated secret is picked up next run)."""
    if alerts.webhook_url:
        return alerts.webhook_url, None
    if alerts.webhook_url_env:
        url = os.environ.get(alerts.webhook_url_env, "").strip()
        if url:
            return url, None
        return None, (
            f"the environment variable {alerts.webhook_url_env} (alerts.webhook_url_env) is not set"
        )
    return None, "alerts.webhook_url is not set"


def _reconciliation_alerts(
    conn: duckdb.DuckDBPyConnection, config: LedgerConfig, as_of: dt.date, window_days: int
) -> list[Alert]:
    """Days whose unexplained reconciliation variance exceeds `alerts.min_impact_usd`
    (`pipeline.alerts.reconciliation`, when that rule is installed)."""
    try:
        from pipeline.alerts.reconciliation import evaluate_reconciliation
    except ModuleNotFoundError as e:
        if e.name != "pipeline.alerts.reconciliation":
            raise
        return []
    try:
        return evaluate_reconciliation(conn, config, as_of, window_days)
    except duckdb.CatalogException:
        return []  # no reconciliation mart in this file (yet): nothing to compare


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise AlertsError(
            f"DuckDB file {path} does not exist: run `byok-ledger run --config ...` first "
            "to build the marts"
        )
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as e:
        raise AlertsError(f"cannot open {path}: {e} (is another process writing it?)") from None


def _last_day(conn: duckdb.DuckDBPyConnection, path: Path) -> dt.date | None:
    try:
        return conn.execute(sql("last_day")).fetchone()[0]
    except duckdb.CatalogException:
        raise AlertsError(
            f"{path} has no marts.split_billing_daily: run `byok-ledger run --config ...` first"
        ) from None


def evaluate_alerts(
    config: LedgerConfig,
    *,
    as_of: dt.date | None = None,
    dry_run: bool = False,
    window_days: int = DEFAULT_WINDOW_DAYS,
    client: httpx.Client | None = None,
    max_attempts: int = 3,
    backoff_base_s: float = 0.5,
    conn: duckdb.DuckDBPyConnection | None = None,
    now: dt.datetime | None = None,
    webhook_url: str | None = None,
) -> EvaluationResult:
    """Evaluate budgets and anomalies, record new alerts and deliver every undelivered one.

    `dry_run` opens the DuckDB file read-only and neither sends nor records anything. Pass
    `conn` to reuse an open read-write connection (the Dagster asset does); `webhook_url`
    overrides `alerts.webhook_url` / `alerts.webhook_url_env` (the demo points it at a local
    receiver)."""
    path = config.duckdb_path
    missing = None
    if webhook_url is None:
        webhook_url, missing = resolve_webhook_url(config.alerts)
    own = conn is None
    if conn is None:
        conn = _connect(path, read_only=dry_run)
    try:
        result = _evaluate(
            conn,
            config,
            path,
            as_of,
            dry_run,
            window_days,
            client,
            max_attempts,
            backoff_base_s,
            now,
            webhook_url,
        )
        result.webhook_missing = missing
        return result
    finally:
        if own:
            conn.close()


def _evaluate(
    conn: duckdb.DuckDBPyConnection,
    config: LedgerConfig,
    path: Path,
    as_of: dt.date | None,
    dry_run: bool,
    window_days: int,
    client: httpx.Client | None,
    max_attempts: int,
    backoff_base_s: float,
    now: dt.datetime | None,
    url: str | None,
) -> EvaluationResult:
    last = _last_day(conn, path)
    as_of = as_of or last
    result = EvaluationResult(as_of=as_of, dry_run=dry_run, webhook_configured=bool(url))
    if as_of is None:
        return result  # no billing rows yet: nothing to evaluate

    statuses, budget_alerts = evaluate_budgets(conn, config, as_of, window_days)
    found = (
        budget_alerts
        + evaluate_anomalies(conn, config, as_of, window_days)
        + _reconciliation_alerts(conn, config, as_of, window_days)
    )
    # One alert per id even if two rules produced it.
    result.evaluated = list({a.alert_id: a for a in found}.values())
    result.budget_status = statuses

    try:
        known = ledger.ledger_state(conn)
    except duckdb.CatalogException:
        known = {}  # no ledger yet (dry run on a fresh file)
    result.new = [a for a in result.evaluated if a.alert_id not in known]
    if dry_run:
        return result

    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ledger.ensure_tables(conn)
    ledger.write_budget_status(conn, statuses, [b.id for b in config.budgets], now)
    ledger.record_new(conn, result.new, now)

    if not url:
        return result  # recorded; delivered once a webhook is configured
    import httpx

    own_client = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(10.0))
    try:
        # Critical first (ledger.pending orders by severity): a failing info alert can never
        # hold back a critical one.
        receiver_down = False
        for alert in ledger.pending(conn):
            if receiver_down:
                # Unreachable or overloaded after its retries: don't spend every alert's
                # retries on it; the next run tries again, critical first.
                result.deferred.append(alert)
                continue
            d = deliver(
                client, url, alert, max_attempts=max_attempts, backoff_base_s=backoff_base_s
            )
            when = dt.datetime.now(dt.UTC).replace(tzinfo=None) if d.ok else None
            ledger.record_delivery(conn, alert.alert_id, d.attempts, when, d.error)
            if d.ok:
                result.delivered.append(alert)
            else:
                # A refusal of this one alert (a 4xx) does not stop the others.
                result.failed.append((alert, d.error or "unknown error"))
                receiver_down = d.receiver_down
    finally:
        if own_client:
            client.close()
    return result
