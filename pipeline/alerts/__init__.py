"""Budget and anomaly alerts over the marts (docs/reports-alerts.md): evaluate, record in `marts.alerts`, and
deliver each alert once to `alerts.webhook_url`.

Entry point: `evaluate_alerts(config, as_of=None, dry_run=False)`; the CLI handler is
`pipeline.alerts.cli:alerts`, the Dagster schedule lives in `pipeline/defs/alerts/`.
"""

from pipeline.alerts.evaluation import AlertsError, EvaluationResult, evaluate_alerts
from pipeline.alerts.model import Alert
from pipeline.alerts.receiver import WebhookReceiver

__all__ = ["Alert", "AlertsError", "EvaluationResult", "WebhookReceiver", "evaluate_alerts"]
