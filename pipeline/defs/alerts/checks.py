"""Check beside the alert ledger: every recorded alert has been delivered (a warning: failed
deliveries are retried on the next evaluation). Evaluated inside the alert assets' step, after
delivery (`check_specs=` in assets.py)."""

import dagster as dg
import duckdb

ALERTS = dg.AssetKey(["marts", "alerts"])

ALERTS_DELIVERED = dg.AssetCheckSpec(
    "alerts_delivered", asset=ALERTS, description="Every alert in the ledger was delivered"
)


def alerts_delivered(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    """Undelivered alerts (any day: a failed delivery waits for the next run), critical first."""
    rows = conn.execute(
        "SELECT alert_id, scope, attempts, last_error FROM marts.alerts "
        "WHERE delivered_at IS NULL ORDER BY CASE severity WHEN 'critical' THEN 0 "
        "WHEN 'warning' THEN 1 ELSE 2 END, created_at LIMIT 10"
    ).fetchall()
    total = conn.execute("SELECT count(*) FROM marts.alerts WHERE delivered_at IS NULL").fetchone()[
        0
    ]
    return dg.AssetCheckResult(
        asset_key=ALERTS,
        check_name=ALERTS_DELIVERED.name,
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
