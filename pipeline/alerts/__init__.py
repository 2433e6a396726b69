"""Budget, anomaly and reconciliation alerts over the marts (docs/reports-alerts.md):
evaluate, record in `marts.alerts`, and deliver each alert once to the webhook
(`alerts.webhook_url`, or the variable `alerts.webhook_url_env` names), critical first.

Entry point: `evaluate_alerts(config, as_of=None, dry_run=False)`; `byok-ledger alerts` calls
`pipeline.alerts.cli.run_alerts`, and the Dagster assets of the daily job live in
`pipeline/defs/alerts/`.
"""

from pipeline.alerts.evaluation import AlertsError, EvaluationResult, evaluate_alerts
from pipeline.alerts.model import Alert
from pipeline.alerts.receiver import WebhookReceiver

__all__ = ["Alert", "AlertsError", "EvaluationResult", "WebhookReceiver", "evaluate_alerts"]
