"""Check beside the alert ledger: every recorded alert has been delivered (a warning: failed
deliveries are retried on the next evaluation)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.defs.alerts.assets import ALERTS


@dg.asset_check(asset=ALERTS, description="Every alert in the ledger was delivered")
def alerts_delivered(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """Undelivered alerts (any day: a failed delivery waits for the next run), critical first."""
    with duckdb.get_connection() as conn:
        rows = conn.execute(
            "SELECT alert_id, scope, attempts, last_error FROM marts.alerts "
            "WHERE delivered_at IS NULL ORDER BY CASE severity WHEN 'critical' THEN 0 "
            "WHEN 'warning' THEN 1 ELSE 2 END, created_at LIMIT 10"
        ).fetchall()
        total = conn.execute(
            "SELECT count(*) FROM marts.alerts WHERE delivered_at IS NULL"
        ).fetchone()[0]
    return dg.AssetCheckResult(
        passed=total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "undelivered": int(total),
            "examples": dg.MetadataValue.md(
                "\n".join(
                    f"- `{a}` {s}: {n} attempt(s), {e or 'no webhook URL configured'}"
                    for a, s, n, e in rows
                )
                or "none"
            ),
        },
    )
