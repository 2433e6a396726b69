"""The log contract between router and pipeline (docs/log-contract.md): request records and outcome
events, shared by `routing_core` (writer), `simulator` (fast synthesizer) and `pipeline`
(reader). Changing a field here is changing a contract.

Hot-path code builds plain dicts with `REQUEST_FIELDS` order; the pydantic models are for
validation (tests, the simulator's fast path, tools) and documentation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

REQUESTS_DIR = "requests"
OUTCOMES_DIR = "outcomes"

Credential = Literal["byok", "shared"]
Tier = Literal["prioritized", "shared", "fallback"]

# Attempt statuses written in request records.
ATTEMPT_OK = "ok"
ATTEMPT_RATE_LIMITED = "rate_limited"
ATTEMPT_ERROR = "error"  # 5xx / unexpected upstream answer
ATTEMPT_TIMEOUT = "timeout"
ATTEMPT_CONNECT = "connect_error"
ATTEMPT_AUTH = "auth_error"  # 401/403: the key cools down
ATTEMPT_BAD_REQUEST = "bad_request"
ATTEMPT_CONTEXT = "context_length"


@dataclass(slots=True)
class Usage:
    """Disjoint token buckets. `input_tokens` is uncached input only; `output_tokens`
    includes reasoning; `reasoning_tokens` is an informational subset of output."""

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


ZERO = Decimal(0)

# The provider-side identifiers a BYOK key's `account` may carry and an invoice line is matched
# on: one list for the config's validation, the log reader and the reconciliation tables.
ACCOUNT_IDS = (
    "project_id",
    "api_key_id",
    "workspace_id",
    "sub_account_id",
    "billing_account_id",
    "organization_id",
)


@dataclass(slots=True)
class Cost:
    """What one request costs, by billing layer (USD, Decimal)."""

    list_usd: Decimal = ZERO
    provider_usd: Decimal = ZERO  # router's estimate of the provider bill on the BYOK account
    platform_fee_usd: Decimal = ZERO  # platform's BYOK fee
    platform_credits_usd: Decimal = ZERO  # shared-capacity credits on the platform statement

    @property
    def total_usd(self) -> Decimal:
        return self.provider_usd + self.platform_fee_usd + self.platform_credits_usd

    def as_dict(self) -> dict[str, str]:
        return {
            "list_usd": f"{self.list_usd:f}",
            "provider_usd": f"{self.provider_usd:f}",
            "platform_fee_usd": f"{self.platform_fee_usd:f}",
            "platform_credits_usd": f"{self.platform_credits_usd:f}",
        }


# --------------------------------------------------------------------------- validation models


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttemptRecord(_Rec):
    model: str
    provider: str
    credential: Credential
    key_id: str | None
    status: str
    http_status: int | None
    error_type: str | None
    latency_ms: float


class UsageRecord(_Rec):
    input_tokens: int = Field(ge=0)
    cache_read_tokens: int = Field(ge=0)
    cache_write_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    reasoning_tokens: int = Field(ge=0)


class CostRecord(_Rec):
    list_usd: Decimal
    provider_usd: Decimal
    platform_fee_usd: Decimal
    platform_credits_usd: Decimal


class RequestRecord(_Rec):
    schema_version: Literal[1]
    request_id: str
    ts: dt.datetime
    duration_ms: float
    api_key_id: str | None
    environment: str | None
    app: str | None
    member_id: str | None
    workload: str | None
    data_class: str | None
    workflow_id: str | None
    idempotency_key: str | None
    requested_models: list[str]
    model: str | None
    provider: str | None
    upstream_model: str | None
    credential: Credential | None
    key_id: str | None
    account: dict[str, str]
    attempts: list[AttemptRecord]
    fallback_used: bool
    fallback_reason: str | None
    status: Literal["ok", "error"]
    error_code: int | None
    zdr: bool | None
    usage: UsageRecord
    cost: CostRecord
    # Optional fields (absent in older records; readers must not require them):
    # where `usage` came from (routing_core.usage): provider | estimated | clamped; null
    # or absent when nothing was served.
    usage_source: Literal["provider", "estimated", "clamped"] | None = None
    stream: bool | None = None  # true for a streamed request (Router.astream)
    ttfb_ms: float | None = Field(default=None, ge=0)  # first event to the consumer
    # Why a request that was being served ended in error: client_closed (the caller went
    # away, error_code 499) or upstream_interrupted (the provider broke off, 502/504).
    error_reason: Literal["client_closed", "upstream_interrupted"] | None = None


class OutcomeEvent(_Rec):
    schema_version: Literal[1]
    event_id: str
    ts: dt.datetime
    request_id: str | None = None
    workflow_id: str | None = None
    accepted: bool
    score: float | None = None
    reason: str | None = None


REQUEST_OPTIONAL_FIELDS: tuple[str, ...] = ("usage_source", "stream", "ttfb_ms", "error_reason")
REQUEST_FIELDS: tuple[str, ...] = tuple(
    f for f in RequestRecord.model_fields if f not in REQUEST_OPTIONAL_FIELDS
)
OUTCOME_FIELDS: tuple[str, ...] = tuple(OutcomeEvent.model_fields)


def format_ts(ts: dt.datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z, the one spelling the logs use."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware UTC")
    ts = ts.astimezone(dt.UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
