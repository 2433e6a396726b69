"""Value types of a routing decision: the request as the planner sees it, the ordered
attempts, the excluded candidates with reason codes, and the caller-facing error.
`Plan.to_dict()` is the documented `explain --json` shape (docs/routing.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Reason codes (docs/routing.md lists them all).
MODEL_NOT_ALLOWED = "model_not_allowed"
MODEL_UNKNOWN = "model_unknown"
PROVIDER_NOT_ALLOWED = "provider_not_allowed"
PROVIDER_IGNORED = "provider_ignored"
ZDR_REQUIRED = "zdr_required"
DATA_COLLECTION = "data_collection"
KEY_FILTER_MODEL = "key_filter_model"
KEY_FILTER_API_KEY = "key_filter_api_key"
KEY_FILTER_MEMBER = "key_filter_member"
KEY_FILTER_ENVIRONMENT = "key_filter_environment"
STRICT_BYOK = "strict_byok"
SHARED_FALLBACK_DISABLED = "shared_fallback_disabled"
MISSING_CAPABILITY = "missing_capability"
OVER_MAX_PRICE = "over_max_price"
KEY_DISABLED = "key_disabled"
KEY_COOLING_DOWN = "key_cooling_down"
CONTEXT_TOO_LONG = "context_too_long"
NO_SHARED_CAPACITY = "no_shared_capacity"  # provider not served by the platform pool


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What the planner needs to know about a request (no prompt text)."""

    api_key_id: str
    models: tuple[str, ...]
    workload: str | None = None
    member_id: str | None = None
    zdr: bool = False  # the request asks for ZDR endpoints only
    provider_only: tuple[str, ...] | None = None
    provider_order: tuple[str, ...] | None = None
    provider_ignore: tuple[str, ...] = ()
    allow_fallbacks: bool = True  # False removes shared capacity (OpenRouter semantics)
    data_collection: str | None = None  # "deny" excludes providers that retain data
    requires: tuple[str, ...] = ()  # capabilities, e.g. ("tools",)
    max_price_input: Decimal | None = None  # USD per 1M tokens
    max_price_output: Decimal | None = None
    estimated_input_tokens: int = 0  # for context-length screening (0 = unknown)
    at: dt.datetime | None = None  # price/cooldown clock; None = now


@dataclass(frozen=True, slots=True)
class Attempt:
    model: str
    provider: str
    credential: str  # "byok" | "shared"
    key_id: str | None
    tier: str  # "prioritized" | "shared" | "fallback"
    upstream_model: str = ""
    zdr: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "credential": self.credential,
            "key_id": self.key_id,
            "tier": self.tier,
        }


@dataclass(frozen=True, slots=True)
class Exclusion:
    model: str
    provider: str | None
    credential: str | None
    key_id: str | None
    reason: str
    detail: str = ""

    def to_dict(self, *, with_detail: bool = False) -> dict[str, Any]:
        """The documented `explain --json` shape; `with_detail` adds the human-readable detail (error metadata)."""
        d = {
            "model": self.model,
            "provider": self.provider,
            "credential": self.credential,
            "key_id": self.key_id,
            "reason": self.reason,
        }
        if with_detail and self.detail:
            d["detail"] = self.detail
        return d


@dataclass(slots=True)
class RouteError(Exception):
    """Caller-facing error (docs/routing.md): `{"error": {"code", "message", "metadata"}}`.

    Not a frozen dataclass: Python sets `__traceback__` on an exception that passes
    through a `contextlib.contextmanager`, and a frozen slots dataclass's `__setattr__`
    then fails with a TypeError instead of letting the RouteError through. Treat it as
    immutable all the same (plan errors are shared; the router copies them)."""

    __hash__ = Exception.__hash__  # identity, as before (eq compares fields)

    code: int
    message: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "metadata": self.metadata}}


# Caller-facing codes (docs/routing.md).
BAD_REQUEST = 400
UNKNOWN_API_KEY = 401
LIMIT_EXHAUSTED = 402
GUARDRAIL_BLOCK = 403
NO_ROUTE = 404
ALL_RATE_LIMITED = 429
UPSTREAM_FAILED = 502
UNAVAILABLE = 503


@dataclass(frozen=True, slots=True)
class Plan:
    attempts: tuple[Attempt, ...]
    excluded: tuple[Exclusion, ...]
    error: RouteError | None = None
    max_attempts: int = 4
    deadline_s: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempts": [a.to_dict() for a in self.attempts],
            "excluded": [e.to_dict() for e in self.excluded],
            "error": None
            if self.error is None
            else {"code": self.error.code, "message": self.error.message},
        }
