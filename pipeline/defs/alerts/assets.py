"""`marts.budget_status` and `marts.alerts` as daily-partitioned assets of the ledger graph, so
`byok-ledger run` and the schedule evaluate alerts in the same run that rebuilt the marts:
budgets, anomalies and reconciliation variances as of the run's last day, new alerts recorded
once, then every undelivered alert POSTed to the webhook, critical first. Idempotent: alert ids
are deterministic, so re-materializing never duplicates or re-sends an alert."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.alerts import evaluate_alerts
from pipeline.alerts import ledger as alert_ledger
from pipeline.alerts.evaluation import DEFAULT_WINDOW_DAYS
from pipeline.alerts.queries import sql
from pipeline.defs.alerts.checks import ALERTS, ALERTS_DELIVERED, alerts_delivered
from pipeline.defs.metadata import run_days
from pipeline.defs.partitions import daily_partitions, single_run
from pipeline.defs.resources import AlertDeliveryResource, LedgerConfigResource

SPLIT = dg.AssetKey(["marts", "split_billing_daily"])
RECONCILIATION = dg.AssetKey(["marts", "reconciliation_daily"])
UNATTRIBUTED = dg.AssetKey(["marts", "unattributed_usage"])
BUDGET_STATUS = dg.AssetKey(["marts", "budget_status"])
RANK = {"critical": 0, "warning": 1, "info": 2}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            BUDGET_STATUS,
            deps=[SPLIT],
            kinds={"duckdb"},
            description="Spend, limit, % used and period-end forecast per budget and period.",
        ),
        dg.AssetSpec(
            ALERTS,
            deps=[SPLIT, RECONCILIATION, UNATTRIBUTED],
            kinds={"duckdb"},
            description="The alert ledger: each budget, forecast, anomaly and reconciliation "
            "alert once, with its delivery state (delivered_at, attempts, last_error).",
        ),
    ],
    check_specs=[ALERTS_DELIVERED],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="alerts",
)
def alert_marts(
    context: dg.AssetExecutionContext,
    ledger: LedgerConfigResource,
    duckdb: DuckDBResource,
    alert_delivery: AlertDeliveryResource,
):
    """Evaluate as of the run's last day (or the last day in the marts, if earlier), over the
    run's days or the last 7, whichever is longer; record new alerts; deliver undelivered ones
    critical first. A failed delivery does not fail the run: it stays in the ledger, is
    retried next time, and the `alerts_delivered` check shows it."""
    days = run_days(context)
    config = ledger.config()
    window = max(DEFAULT_WINDOW_DAYS, len(days.days))
    with duckdb.get_connection() as conn:
        alert_ledger.ensure_tables(conn)
        last = conn.execute(sql("last_day")).fetchone()[0]
        as_of = min(days.end, last) if last is not None else None
        result = evaluate_alerts(
            config,
            as_of=as_of,
            conn=conn,
            window_days=window,
            webhook_url=alert_delivery.webhook_url,
            max_attempts=alert_delivery.max_attempts,
            backoff_base_s=alert_delivery.backoff_base_s,
        )
        statuses = conn.execute("SELECT count(*) FROM marts.budget_status").fetchone()[0]
        ledger_rows = conn.execute("SELECT count(*) FROM marts.alerts").fetchone()[0]
        pending = conn.execute(
            "SELECT count(*) FROM marts.alerts WHERE delivered_at IS NULL"
        ).fetchone()[0]
        delivered = alerts_delivered(conn)
    for alert, err in result.failed:
        context.log.warning(f"alert {alert.alert_id} ({alert.scope}) not delivered: {err}")
    if result.webhook_missing and result.new:
        context.log.warning(f"{result.webhook_missing}: alerts recorded, not delivered")
    by_kind: dict[str, int] = {}
    for a in result.evaluated:
        by_kind[a.kind] = by_kind.get(a.kind, 0) + 1
    new = sorted(result.new, key=lambda a: (RANK.get(a.severity, 3), a.alert_id))
    yield dg.MaterializeResult(
        asset_key=BUDGET_STATUS,
        metadata={
            "dagster/row_count": int(statuses),
            "as_of": str(result.as_of),
            "budgets_over_limit": sum(
                1 for s in result.budget_status if s.is_current and s.spent_usd >= s.limit_usd
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ALERTS,
        metadata={
            "dagster/row_count": int(ledger_rows),
            "as_of": str(result.as_of),
            "evaluated": len(result.evaluated),
            **{f"evaluated_{k}": n for k, n in sorted(by_kind.items())},
            "new": len(result.new),
            "delivered": len(result.delivered),
            "failed": len(result.failed),
            "deferred": len(result.deferred),
            "undelivered_in_ledger": int(pending),
            "webhook": "configured" if result.webhook_configured else str(result.webhook_missing),
            "new_alerts": dg.MetadataValue.md(
                "\n".join(f"- **{a.severity}** {a.message}" for a in new) or "none"
            ),
        },
    )
    yield delivered
