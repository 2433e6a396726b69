"""Prometheus metrics of one gateway process (`GET /metrics`, prometheus-client text).

Labels are ids from the config (API key ids, provider ids, model slugs), endpoint paths,
HTTP codes and reason words: never a secret, a prompt or a caller-supplied string (a model
slug a caller made up is counted under `model="other"`).

Budget headroom is read at scrape time from the budget store (`router.state`), so with
Redis every replica reports the same shared headroom.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from routing_core.budgets import SpendGuard

disable_created_metrics()  # the *_created series double the exposition for no use here
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)


class _Headroom(Collector):
    def __init__(self, guard: SpendGuard) -> None:
        self.guard = guard

    def collect(self) -> Iterator[Any]:
        now = dt.datetime.now(dt.UTC)
        limit_g = GaugeMetricFamily(
            "byok_gateway_budget_limit_usd", "Spend limit per counter", labels=["scope", "scope_id"]
        )
        head = GaugeMetricFamily(
            "byok_gateway_budget_headroom_usd",
            "Limit minus settled spend minus in-flight reservations, this period",
            labels=["scope", "scope_id"],
        )
        held = GaugeMetricFamily(
            "byok_gateway_budget_in_flight_usd",
            "Reserved by requests in flight, this period",
            labels=["scope", "scope_id"],
        )
        try:
            for scope, scope_id, usd, _ in self.guard.limits():
                spent = self.guard.spent(scope, scope_id, now)
                inflight = self.guard.in_flight(scope, scope_id, now)
                limit_g.add_metric([scope, scope_id], float(usd))
                head.add_metric([scope, scope_id], float(usd - spent - inflight))
                held.add_metric([scope, scope_id], float(inflight))
        except Exception:  # noqa: BLE001 - a store outage must not break the scrape
            return
        yield limit_g
        yield head
        yield held


class GatewayMetrics:
    """The counters and histograms the gateway updates, in their own registry."""

    def __init__(self, guard: SpendGuard, models: list[str]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._models = frozenset(models)
        self.requests = Counter(
            "byok_gateway_requests",
            "Requests answered, by endpoint and HTTP status",
            ["endpoint", "status"],
            registry=r,
        )
        self.errors = Counter(
            "byok_gateway_errors",
            "Error answers by endpoint and error code (400..503, 499 client closed)",
            ["endpoint", "code"],
            registry=r,
        )
        self.attempts = Counter(
            "byok_gateway_attempts",
            "Provider attempts by provider, credential and outcome",
            ["provider", "credential", "status"],
            registry=r,
        )
        self.fallbacks = Counter(
            "byok_gateway_fallbacks",
            "Requests served by a fallback, by reason",
            ["reason"],
            registry=r,
        )
        self.latency = Histogram(
            "byok_gateway_request_duration_seconds",
            "Whole request duration inside the gateway (streams: until the last byte)",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "byok_gateway_time_to_first_byte_seconds",
            "Streams: time until the first content event was sent",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream = Histogram(
            "byok_gateway_upstream_latency_seconds",
            "Latency of each provider attempt",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.spend = Counter(
            "byok_gateway_spend_usd",
            "Cost of served requests by billing layer and model (approximate: use the ledger "
            "for money)",
            ["layer", "model"],
            registry=r,
        )
        self.tokens = Counter(
            "byok_gateway_tokens", "Tokens by bucket and model", ["bucket", "model"], registry=r
        )
        self.in_flight = Gauge(
            "byok_gateway_requests_in_flight",
            "Requests being served",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple, Any] = {}
        self._headroom = _Headroom(guard)
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        if not self.multiprocess:
            r.register(self._headroom)

    def model_label(self, model: str | None) -> str:
        return model if model in self._models else "other"

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered (labels() validates and locks each time).
        Label values are config ids and fixed words, so the cache stays small."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_attempts(self, attempts: list[dict[str, Any]]) -> None:
        for a in attempts:
            self.child(self.attempts, a["provider"], a["credential"], a["status"]).inc()
            lat = a.get("latency_ms")
            if isinstance(lat, int | float):
                self.child(self.upstream, a["provider"]).observe(lat / 1000.0)

    def observe_served(self, model: str, usage: Any, cost: Any, fallback_reason: str | None):
        m = self.model_label(model)
        for layer, v in (
            ("provider", cost.provider_usd),
            ("platform_fee", cost.platform_fee_usd),
            ("platform_credits", cost.platform_credits_usd),
        ):
            if v:
                self.child(self.spend, layer, m).inc(float(v))
        for bucket, n in (
            ("input", usage.input_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
            ("output", usage.output_tokens),
            ("reasoning", usage.reasoning_tokens),
        ):
            if n:
                self.child(self.tokens, bucket, m).inc(n)
        if fallback_reason:
            self.child(self.fallbacks, fallback_reason).inc()

    def render(self) -> bytes:
        """The exposition. With several worker processes (`serve --workers N` sets
        PROMETHEUS_MULTIPROC_DIR) every worker's counters are summed, whichever worker
        answers the scrape."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        reg.register(self._headroom)
        return generate_latest(reg)

    def close(self) -> None:
        """A worker leaving: drop its live gauges from the shared files."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())
