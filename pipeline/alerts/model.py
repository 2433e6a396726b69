"""The alert value: what was found, with a deterministic id so re-evaluating never duplicates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from routing_core.money import format_usd

KINDS = ("budget_threshold", "budget_forecast", "anomaly", "reconciliation")


def alert_id(kind: str, scope: str, period: str, threshold: str = "") -> str:
    """Same kind + scope + period + threshold -> same id, whatever run finds it."""
    raw = "\x1f".join((kind, scope, period, threshold))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str  # one of KINDS
    scope: str  # e.g. "api_key:public-chat-prod"
    period: str  # e.g. "monthly:2026-11-01" or "day:2026-11-20"
    severity: str  # info | warning | critical
    message: str
    payload: dict[str, Any] = field(default_factory=dict)


def money(value: Decimal) -> str:
    """$1,234.56 (negative as -$1.00); alerts are read by people, so cents are enough. The
    one money spelling of routing_core.money (half-up, hyphen minus, no -$0.00)."""
    return format_usd(value)


def jsonable(value: Any) -> Any:
    """Payload values for JSON: Decimal as a string so no precision is lost."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
