"""`marts.budget_status` and `marts.alerts` as Dagster assets: one evaluation of budgets and
anomalies (as of the last day in the marts) that records and delivers new alerts. Idempotent:
alert ids are deterministic, so re-materializing never duplicates or re-sends an alert."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.alerts import evaluate_alerts
from pipeline.defs.resources import LedgerConfigResource

SPLIT = dg.AssetKey(["marts", "split_billing_daily"])
BUDGET_STATUS = dg.AssetKey(["marts", "budget_status"])
ALERTS = dg.AssetKey(["marts", "alerts"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            BUDGET_STATUS,
            deps=[SPLIT],
            kinds={"duckdb"},
            group_name="alerts",
            description="Spend, limit, % used and period-end forecast per budget and period.",
        ),
        dg.AssetSpec(
            ALERTS,
            deps=[SPLIT],
            kinds={"duckdb"},
            group_name="alerts",
            description="The alert ledger: each budget/forecast/anomaly alert once, with its "
            "delivery state (delivered_at, attempts, last_error).",
        ),
    ],
)
def alert_marts(
    context: dg.AssetExecutionContext, ledger: LedgerConfigResource, duckdb: DuckDBResource
):
    """Evaluate budgets and anomalies, record new alerts, deliver undelivered ones. A failed
    delivery does not fail the run: it stays in the ledger and is retried next time."""
    config = ledger.config()
    with duckdb.get_connection() as conn:
        result = evaluate_alerts(config, conn=conn)
        statuses = conn.execute("SELECT count(*) FROM marts.budget_status").fetchone()[0]
        ledger_rows = conn.execute("SELECT count(*) FROM marts.alerts").fetchone()[0]
        pending = conn.execute(
            "SELECT count(*) FROM marts.alerts WHERE delivered_at IS NULL"
        ).fetchone()[0]
    for alert, err in result.failed:
        context.log.warning(f"alert {alert.alert_id} ({alert.scope}) not delivered: {err}")
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
            "new": len(result.new),
            "delivered": len(result.delivered),
            "failed": len(result.failed),
            "undelivered_in_ledger": int(pending),
            "new_alerts": dg.MetadataValue.md(
                "\n".join(f"- **{a.severity}** {a.message}" for a in result.new) or "none"
            ),
        },
    )
