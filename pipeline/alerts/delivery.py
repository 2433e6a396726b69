"""Webhook delivery: one JSON POST per alert to `alerts.webhook_url`, Slack-compatible
(`text`) plus the structured fields, retried with bounded exponential backoff."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a delivery happens: most runs deliver nothing
    import httpx

from pipeline.alerts.model import Alert, jsonable

SEVERITY_ICON = {
    "critical": ":rotating_light:",
    "warning": ":warning:",
    "info": ":information_source:",
}
# Retry these (the receiver may succeed later); any other 4xx is our bug or its config.
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Delivery:
    ok: bool
    attempts: int
    error: str | None
    # The receiver is down or overloaded (transport error, 408/425/429/5xx after the retries):
    # the next alert would fail the same way. False for a refusal of this alert (other 4xx).
    receiver_down: bool = False


def webhook_body(alert: Alert) -> dict:
    """Slack reads `text`; other receivers read the structured fields beside it."""
    icon = SEVERITY_ICON.get(alert.severity, "")
    return {
        "text": f"{icon} [byok-ledger {alert.severity}] {alert.message}".strip(),
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "severity": alert.severity,
        "scope": alert.scope,
        "period": alert.period,
        "message": alert.message,
        "fields": jsonable(alert.payload),
    }


def deliver(
    client: httpx.Client,
    url: str,
    alert: Alert,
    *,
    max_attempts: int = 3,
    backoff_base_s: float = 0.5,
    backoff_max_s: float = 4.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST the alert; retry transport errors and retryable statuses with exponential backoff
    (base * 2^n, capped), at most `max_attempts` times. Never raises for delivery failures."""
    import httpx

    body = json.dumps(webhook_body(alert)).encode()
    headers = {
        "content-type": "application/json",
        # Lets a receiver drop a repeat if we crash between its 2xx and our ledger update.
        "idempotency-key": alert.alert_id,
        "user-agent": "byok-ledger-alerts/1",
    }
    error: str | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            resp = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as e:
            error = redact(f"{type(e).__name__}: {e}", url)
            retry = True
        else:
            if 200 <= resp.status_code < 300:
                return Delivery(ok=True, attempts=attempt, error=None)
            error = redact(f"HTTP {resp.status_code}: {resp.text[:200]}", url)
            retry = resp.status_code in RETRY_STATUS
        if not retry:
            return Delivery(ok=False, attempts=attempt, error=error, receiver_down=False)
        if attempt < max_attempts:
            sleep(min(backoff_max_s, backoff_base_s * (2 ** (attempt - 1))))
    return Delivery(ok=False, attempts=max_attempts, error=error, receiver_down=True)


def redact(text: str, url: str) -> str:
    """Webhook URLs often carry a token (Slack's do): never store or print one."""
    return text.replace(url, "<alerts.webhook_url>") if url else text
