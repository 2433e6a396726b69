"""One routed request: `RequestCtx`, built once when a call enters the router and carried
through admission, the attempt loop and the record; `Completion`, what a served
non-streaming request returns to its caller; and `route_request`, the caller's routing
keywords turned into the planner's `RouteRequest`."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from routing_core.budgets import Reservation
from routing_core.planning import ResolvedRequest
from routing_core.routes import BAD_REQUEST, Plan, RouteError, RouteRequest
from routing_core.schema import Cost, Usage


@dataclass(slots=True)
class Completion:
    """A served request: the OpenAI-style `chat.completion` body (its `model` is the gateway
    slug) and how it was routed and priced. `replayed` marks an idempotent replay;
    `usage_source` says whether `usage` is the provider's (provider), an estimate
    (estimated) or bounded (clamped), see routing_core.usage."""

    request_id: str
    body: dict[str, Any]
    model: str
    provider: str
    upstream_model: str
    credential: str
    key_id: str | None
    usage: Usage
    cost: Cost
    attempts: list[dict[str, Any]]
    fallback_used: bool
    fallback_reason: str | None
    zdr: bool
    replayed: bool = False
    usage_source: str = "provider"

    @property
    def content(self) -> str | None:
        return self.body["choices"][0]["message"].get("content")

    @property
    def message(self) -> dict[str, Any]:
        return self.body["choices"][0]["message"]

    def to_dict(self) -> dict[str, Any]:
        """The body plus OpenRouter-style routing fields (`provider`, `request_id`)."""
        return {**self.body, "provider": self.provider, "request_id": self.request_id}


@dataclass(slots=True)
class RequestCtx:
    """One call in flight, from admission to its record. `t0` is the router timer at entry
    (every duration is a difference of timer readings); `slept` counts injected (virtual)
    sleep so the deadline and durations include it."""

    request_id: str
    t0: float
    start: dt.datetime
    api_key_id: str | None
    requested: list[str]
    idempotency_key: str | None
    workflow_id: str | None
    resolved: ResolvedRequest | None = None
    plan: Plan | None = None
    body: dict[str, Any] | None = None
    reservation: Reservation | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    slept: float = 0.0
    idem_event: threading.Event | None = None  # set when this call owns its idempotency key
    max_out: int = 0  # the max_tokens sent upstream
    prompt_chars: int = 0  # prompt size, for usage estimates
    n_messages: int = 0
    stream: bool = False
    # The calling application when the request names one (`app=`; the gateway's X-Title /
    # HTTP-Referer): the record's `app` instead of the API key's configured one.
    app: str | None = None


PROVIDER_PREFS = frozenset(
    {
        "only",
        "order",
        "ignore",
        "allow_fallbacks",
        "data_collection",
        "max_price",
        "zdr",
        "sort",
        "require_parameters",
    }
)


def route_request(
    api_key_id: str,
    models: tuple[str, ...],
    workload: str | None,
    member_id: str | None,
    zdr: bool,
    provider: Mapping[str, Any] | None,
    tools: Any,
    at: dt.datetime | None,
) -> RouteRequest:
    """The planner's `RouteRequest` from `complete` keywords; OpenRouter-style `provider`
    preferences are checked here (400 for an unknown one or a bad `max_price`)."""
    kw: dict[str, Any] = {}
    if provider:
        unknown = set(provider) - PROVIDER_PREFS
        if unknown:
            raise RouteError(
                BAD_REQUEST,
                f"unknown provider preference(s) {sorted(unknown)}; known: "
                f"{sorted(PROVIDER_PREFS)}",
            )
        if provider.get("only") is not None:
            kw["provider_only"] = tuple(provider["only"])
        if provider.get("order") is not None:
            kw["provider_order"] = tuple(provider["order"])
        if provider.get("ignore"):
            kw["provider_ignore"] = tuple(provider["ignore"])
        if provider.get("allow_fallbacks") is False:
            kw["allow_fallbacks"] = False
        if provider.get("data_collection") is not None:
            kw["data_collection"] = provider["data_collection"]
        if provider.get("zdr"):
            zdr = True
        mp = provider.get("max_price")
        if mp:
            try:
                if mp.get("prompt") is not None:
                    kw["max_price_input"] = Decimal(str(mp["prompt"]))
                if mp.get("completion") is not None:
                    kw["max_price_output"] = Decimal(str(mp["completion"]))
            except (ArithmeticError, AttributeError, ValueError):
                raise RouteError(
                    BAD_REQUEST,
                    "provider.max_price needs decimal prompt/completion prices (USD per 1M tokens)",
                ) from None
    if tools:
        kw["requires"] = ("tools",)
    return RouteRequest(
        api_key_id=api_key_id,
        models=models,
        workload=workload,
        member_id=member_id,
        zdr=bool(zdr),
        at=at,
        **kw,
    )
