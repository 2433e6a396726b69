"""`byok-ledger alerts --config FILE [--dry-run]` as a typed function, `run_alerts(config_file,
dry_run)`: evaluate budgets, anomalies and reconciliation alerts now, deliver new alerts, and
print what happened (`byok_ledger.cli` parses the arguments)."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.alerts.evaluation import AlertsError, EvaluationResult, evaluate_alerts
from routing_core.config import load_config


def format_result(r: EvaluationResult) -> str:
    """A summary line, then one row per alert evaluated with what happened to it."""
    failed = {a.alert_id: err for a, err in r.failed}
    deferred = {a.alert_id for a in r.deferred}
    delivered = {a.alert_id for a in r.delivered}
    new = {a.alert_id for a in r.new}
    head = (
        f"alerts as of {r.as_of}: evaluated {len(r.evaluated)}, new {len(r.new)}, "
        f"delivered {len(r.delivered)}, failed {len(r.failed)}"
        + (f", deferred {len(r.deferred)}" if r.deferred else "")
        + (" (dry run: nothing sent or recorded)" if r.dry_run else "")
    )
    lines = [head]
    if not r.dry_run and not r.webhook_configured and r.new:
        why = r.webhook_missing or "no webhook URL is configured"
        lines.append(f"{why}: alerts recorded, not delivered")
    rows = []
    for a in r.evaluated:
        if r.dry_run:
            state = "new (not sent)" if a.alert_id in new else "already recorded"
        elif a.alert_id in delivered:
            state = "delivered"
        elif a.alert_id in failed:
            state = "FAILED"
        elif a.alert_id in deferred:
            state = "deferred"
        elif a.alert_id in new:
            state = "recorded"
        else:
            state = "already recorded"
        rows.append((state, a.kind, a.severity, a.scope, a.period, a.message))
    # Retried deliveries of alerts found on earlier runs.
    evaluated_ids = {a.alert_id for a in r.evaluated}
    for a in r.delivered:
        if a.alert_id not in evaluated_ids:
            rows.append(("delivered (retry)", a.kind, a.severity, a.scope, a.period, a.message))
    for a, _err in r.failed:
        if a.alert_id not in evaluated_ids:
            rows.append(("FAILED (retry)", a.kind, a.severity, a.scope, a.period, a.message))
    if rows:
        titles = ("status", "kind", "severity", "scope", "period")
        widths = [max(len(t), *(len(str(row[i])) for row in rows)) for i, t in enumerate(titles)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines.append(fmt.format(*titles) + "  message")
        for row in rows:
            lines.append(fmt.format(*row[:5]) + "  " + row[5])
    for a, err in r.failed:
        lines.append(
            f"delivery failed for {a.alert_id} ({a.scope}): {err}; retried on the next run"
        )
    if r.deferred:
        lines.append(
            f"{len(r.deferred)} more alert(s) not attempted after that failure; "
            "retried on the next run"
        )
    return "\n".join(lines)


def run_alerts(config_file: str | Path, dry_run: bool = False) -> int:
    """Evaluate and deliver now. Exit 0 when every alert was delivered (or there was none), 1
    when some deliveries failed (they stay in the ledger and are retried next run), 2 on a
    config or data problem (missing DuckDB file or marts)."""
    config = load_config(config_file)  # a ConfigError is reported by byok_ledger.cli.main
    try:
        result = evaluate_alerts(config, dry_run=dry_run)
    except AlertsError as e:
        print(f"byok-ledger alerts: {e}", file=sys.stderr)
        return 2
    print(format_result(result))
    return 1 if result.failed or result.deferred else 0
