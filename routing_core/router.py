"""The `Router`: construction, admission and the drivers. It authenticates and plans a
request (routing_core.planning), holds its budget (routing_core.budgets), runs the attempt
loop (routing_core.attempts, failover as in docs/routing.md) over the provider adapters, bounds
and prices what was served (routing_core.usage, routing_core.pricing) and appends exactly
one request record per call (routing_core.record, routing_core.request_log).

One attempt loop, a generator yielding "call"/"sleep" steps, is driven by a sync driver
(`complete`), an async one (`acomplete`) and the streaming one (`astream`), so all have
the same failover semantics.

Secrets: a BYOK key's secret is `secrets[key.secret_env]`; the platform's pooled key for a
provider's shared capacity is `secrets[shared_secret_env(provider)]`, i.e.
`BYOK_LEDGER_SHARED_<PROVIDER>_KEY`. `secrets` defaults to `os.environ`, read once at
construction. A missing secret fails that attempt as an auth error without a provider call.

Reproducible runs: `clock` (record times, cooldowns, TTLs), `sleep` (backoff and
Retry-After waits), `rng_seed` (jitter), `id_factory` (request/event ids) and `timer`
(monotonic seconds behind every latency, duration and the deadline) can all be injected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import inspect
import os
import random
import secrets as _secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx

from routing_core.attempts import CALL, attempt_loop, fallback_of
from routing_core.budgets import SpendGuard
from routing_core.config import LedgerConfig
from routing_core.idempotency import IdempotencyStore
from routing_core.planning import Planner, ResolvedRequest
from routing_core.pricing import ByokFeeMeter
from routing_core.providers import (
    AUTH,
    Adapter,
    ProviderError,
    ProviderResult,
    adapter_for,
    shared_secret_env,
)
from routing_core.providers.base import SyncUpstreamStream, UpstreamStream
from routing_core.providers.openai import usage_to_openai
from routing_core.record import RecordWriter
from routing_core.request import Completion, RequestCtx, route_request
from routing_core.request_log import RequestLog
from routing_core.routes import BAD_REQUEST as HTTP_BAD_REQUEST
from routing_core.routes import (
    UNKNOWN_API_KEY,
    UPSTREAM_FAILED,
    Attempt,
    Plan,
    RouteError,
    RouteRequest,
)
from routing_core.schema import SCHEMA_VERSION, Cost, Usage, format_ts
from routing_core.streaming import LiveStream, ReplayStream, RouterStream, SyncStream
from routing_core.usage import (
    MAX_TOKENS_TOLERANCE,
    SeedCeiling,
    bound_usage,
    estimate_prompt_tokens,
    prompt_chars,
    response_chars,
    text_tokens,
)

__all__ = ["Completion", "Router"]

_IDEM_WAIT_S = 600.0  # a duplicate waits at most this long for the in-flight original
CLIENT_CLOSED = 499  # logged when the caller abandons a request (nginx's convention)
RESOLVED_CACHE_SIZE = 4096  # callers (api key, member, workload) remembered, least recent out


class _Lru(OrderedDict):
    """A dict of at most `size` entries; `get` refreshes, `put` evicts the least recent.
    Bounds caches keyed by caller input (a made-up member_id per request must not grow
    memory)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            value = self[key]
            self.move_to_end(key)
        except KeyError:
            return default
        return value

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


@dataclass(slots=True)
class _Provider:
    adapter: Adapter
    base_url: str
    timeout_s: float


class Router:
    """BYOK-first router over one `LedgerConfig` (see module docstring). Thread-safe for
    `complete`; `acomplete` for asyncio. Use as a context manager or call `close()`."""

    def __init__(
        self,
        config: LedgerConfig,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        writer_id: str | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        secrets: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        sleep: Callable[[float], Any] | None = None,
        rng_seed: int | None = None,
        seed_spend_from_logs: bool = True,
        id_factory: Callable[[], str] | None = None,
        timer: Callable[[], float] | None = None,
    ):
        self.config = config
        self.planner = Planner(config)
        self.prices = self.planner.prices
        self.fee_meter = ByokFeeMeter.from_config(config)
        self.guard = SpendGuard(config)
        self.settings = config.router
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        if self._clock().tzinfo is None:
            raise ValueError("Router clock must return timezone-aware (UTC) datetimes")
        # Injected sleep = simulated time: the deadline then counts slept seconds too.
        self._virtual_sleep = sleep is not None
        self._sleep = sleep or time.sleep
        self._rng = random.Random(rng_seed)
        # Ids are "req_"/"evt_" + id_factory(); every duration and latency is a difference
        # of timer() readings (monotonic seconds). Injected, they make a run reproducible.
        self._new_id = id_factory or _random_id
        self._timer = timer or time.perf_counter
        self.log_dir = Path(log_dir) if log_dir is not None else config.logs_dir
        self.log = RequestLog(self.log_dir, writer_id)
        self._client = http_client
        self._owns_client = http_client is None
        self._aclient = async_http_client
        self._owns_aclient = async_http_client is None
        self._lock = threading.Lock()

        env = os.environ if secrets is None else secrets
        overrides = dict(base_urls or {})
        self._providers = {
            p.id: _Provider(
                adapter_for(p.api), overrides.get(p.id, p.base_url).rstrip("/"), p.timeout_s
            )
            for p in config.providers
        }
        self._key_secret = {k.id: env.get(k.secret_env) or None for k in config.byok_keys}
        self._shared_secret = {
            p.id: env.get(shared_secret_env(p.id)) or None for p in config.providers
        }
        self._account = {k.id: dict(k.account) for k in config.byok_keys}
        self._api_by_sha = {a.secret_sha256: a.id for a in config.api_keys}
        self._api_ids = frozenset(a.id for a in config.api_keys)
        self._resolved: _Lru = _Lru(RESOLVED_CACHE_SIZE)
        self._context = {
            (m.id, ep.provider): ep.context_length for m in config.models for ep in m.endpoints
        }
        self._timeouts = {pid: p.timeout_s for pid, p in self._providers.items()}
        self._cool_until: dict[str, float] = {}
        self._cooling: frozenset[str] = frozenset()
        self._cool_next = float("inf")
        self._idem = IdempotencyStore()
        self._bounds: dict[tuple, tuple[Plan, Cost]] = {}
        self._shapes: dict[tuple, tuple] = {}
        self._writer = RecordWriter(self.log, self._account)

        if seed_spend_from_logs:
            self.guard.seed_from_logs(
                self.log_dir,
                self._clock(),
                fee_meter=self.fee_meter,
                ceiling=SeedCeiling(self.prices, self._context),
            )

    # ------------------------------------------------------------------ lifecycle

    @property
    def http_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=64))
        return self._client

    @property
    def async_http_client(self) -> httpx.AsyncClient:
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=64))
        return self._aclient

    def close(self) -> None:
        """Close the log files and the HTTP clients this router created."""
        self.log.close()
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._owns_aclient and self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
        self.close()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ cooldowns

    def _now_s(self) -> float:
        return self._clock().timestamp()

    def cooling_keys(self, now_s: float | None = None) -> frozenset[str]:
        """BYOK key ids resting after an auth error or a rate limit. The same frozenset
        object is returned while nothing changes (it is part of the planner's memo key)."""
        now_s = self._now_s() if now_s is None else now_s
        if now_s >= self._cool_next:
            with self._lock:
                live = {k: t for k, t in self._cool_until.items() if t > now_s}
                self._cool_until = live
                self._cooling = frozenset(live)
                self._cool_next = min(live.values(), default=float("inf"))
        return self._cooling

    def cool_down(self, key_id: str, seconds: float, now_s: float | None = None) -> None:
        """Take a BYOK key out of rotation for `seconds` (router clock)."""
        if seconds <= 0:
            return
        until = (self._now_s() if now_s is None else now_s) + seconds
        with self._lock:
            if self._cool_until.get(key_id, 0.0) >= until:
                return
            self._cool_until[key_id] = until
            self._cooling = frozenset(self._cool_until)
            self._cool_next = min(self._cool_next, until)

    # ------------------------------------------------------------------ planning

    def _route_request(
        self,
        api_key_id: str,
        models: tuple[str, ...],
        workload: str | None,
        member_id: str | None,
        zdr: bool,
        provider: Mapping[str, Any] | None,
        tools: Any,
        at: dt.datetime | None,
    ) -> RouteRequest:
        return route_request(api_key_id, models, workload, member_id, zdr, provider, tools, at)

    def plan(self, req: RouteRequest | None = None, /, **kw: Any) -> Plan:
        """The ordered attempt plan and every exclusion (what `explain` shows), for a
        `RouteRequest` or the routing keywords of `complete` (api_key_id, model/models,
        workload, member_id, zdr, provider, tools). Cooling keys are excluded."""
        if req is None:
            models = kw.get("models") or ([kw["model"]] if kw.get("model") else [])
            req = self._route_request(
                kw["api_key_id"],
                tuple(models),
                kw.get("workload"),
                kw.get("member_id"),
                kw.get("zdr", False),
                kw.get("provider"),
                kw.get("tools"),
                kw.get("at") or self._clock(),
            )
        return self.planner.plan(req, cooling_keys=self.cooling_keys())

    def _resolve(self, req: RouteRequest) -> ResolvedRequest | RouteError:
        k = (req.api_key_id, req.member_id, req.workload)
        r = self._resolved.get(k)
        if r is None:
            with self._lock:
                r = self.planner.resolve(req)
                self._resolved.put(k, r)
        return r

    def _max_cost(self, plan: Plan, input_tokens: int, max_out: int, at: dt.datetime) -> Cost:
        """Per-layer maximum over every attempt the plan may make (any one may serve)."""
        key = (id(plan), input_tokens, max_out, at.date())
        hit = self._bounds.get(key)
        if hit is not None and hit[0] is plan:
            return hit[1]
        worst = Cost()
        for a in plan.attempts:
            c = self.prices.max_cost_breakdown(a, input_tokens, max_out, at)
            worst = Cost(
                max(worst.list_usd, c.list_usd),
                max(worst.provider_usd, c.provider_usd),
                max(worst.platform_fee_usd, c.platform_fee_usd),
                max(worst.platform_credits_usd, c.platform_credits_usd),
            )
        if len(self._bounds) > 4096:
            self._bounds.clear()
        self._bounds[key] = (plan, worst)
        return worst

    # ------------------------------------------------------------------ entry points

    def complete(
        self,
        *,
        api_key: str | None = None,
        api_key_id: str | None = None,
        model: str | None = None,
        models: list[str] | None = None,
        messages: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
        tools: list[dict[str, Any]] | None = None,
        workload: str | None = None,
        member_id: str | None = None,
        zdr: bool = False,
        provider: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        workflow_id: str | None = None,
        app: str | None = None,
        **params: Any,
    ) -> Completion:
        """Route one chat completion. Who: `api_key` (the router secret, looked up by its
        SHA-256) or `api_key_id`. What: `model` and/or `models` (primary first, then
        request fallbacks; the workload's `model_fallbacks` follow), OpenAI-style
        `messages`/`max_tokens`/`tools` and any other body parameter (`temperature`, ...).
        Policy: `workload` (default: the API key's), `member_id`, `zdr`, `provider`
        (OpenRouter-style `only`, `order`, `ignore`, `allow_fallbacks`, `data_collection`,
        `max_price` {prompt, completion} USD per 1M tokens, `zdr`). `idempotency_key`
        replays a stored result for the same API key within `router.idempotency_ttl_s`;
        `workflow_id` groups requests for outcome events; `app` names the calling
        application in the record (default: the API key's `app`). Returns a `Completion` or raises
        `RouteError` (the caller-facing codes and shape of docs/routing.md); writes exactly one request record."""
        kw = dict(
            api_key=api_key,
            api_key_id=api_key_id,
            model=model,
            models=models,
            messages=messages,
            max_tokens=max_tokens,
            tools=tools,
            workload=workload,
            member_id=member_id,
            zdr=zdr,
            provider=provider,
            idempotency_key=idempotency_key,
            workflow_id=workflow_id,
            app=app,
            **params,
        )
        while True:
            ctx, early = self._begin(**kw)
            if early is None:
                break
            if isinstance(early, Completion):
                return early
            early.wait(_IDEM_WAIT_S)  # the same request is in flight: wait, then look again
        gen = self._loop(ctx)
        client = self.http_client
        try:
            step = next(gen)
            while True:
                if step[0] == CALL:
                    res = self._call(client, ctx, step[1], step[2])
                else:
                    self._sleep(step[1])
                    if self._virtual_sleep:
                        ctx.slept += step[1]
                    res = None
                step = gen.send(res)
        except StopIteration as stop:
            return self._finish(ctx, stop.value)
        except BaseException:
            self._abort(ctx)  # cancelled or interrupted: still one record, no held budget
            raise

    async def acomplete(self, **kw: Any) -> Completion:
        """`complete` for asyncio: the same keywords (checked by the same code), semantics
        and log record."""
        while True:
            ctx, early = self._begin(**kw)
            if early is None:
                break
            if isinstance(early, Completion):
                return early
            for _ in range(int(_IDEM_WAIT_S / 0.002)):
                if early.is_set():
                    break
                await asyncio.sleep(0.002)  # the same request is in flight
        gen = self._loop(ctx)
        client = self.async_http_client
        try:
            step = next(gen)
            while True:
                if step[0] == CALL:
                    res = await self._acall(client, ctx, step[1], step[2])
                else:
                    if self._virtual_sleep:
                        r = self._sleep(step[1])
                        if inspect.isawaitable(r):
                            await r
                        ctx.slept += step[1]
                    else:
                        await asyncio.sleep(step[1])
                    res = None
                step = gen.send(res)
        except StopIteration as stop:
            return self._finish(ctx, stop.value)
        except BaseException:
            self._abort(ctx)  # cancelled or interrupted: still one record, no held budget
            raise

    async def astream(self, **kw: Any) -> RouterStream:
        """A streamed chat completion (routing_core.streaming): the same keywords, policy,
        budgets and errors as `acomplete` (`stream`/`stream_options` are implied: usage is
        always requested upstream). Routing and failover happen here, up to the first
        upstream event; raises RouteError when no route could start a stream. The returned
        `RouterStream` knows its served route; iterate it for events, close it (or leave
        `async with`) when done. Exactly one request record is written per call."""
        kw.pop("stream", None)
        kw.pop("stream_options", None)
        kw["_stream"] = True  # the record says stream: true whatever the outcome
        while True:
            ctx, early = self._begin(**kw)
            if early is None:
                break
            if isinstance(early, Completion):
                return ReplayStream(early)
            for _ in range(int(_IDEM_WAIT_S / 0.002)):
                if early.is_set():
                    break
                await asyncio.sleep(0.002)  # the same request is in flight
        gen = self._loop(ctx)
        client = self.async_http_client
        try:
            step = next(gen)
            while True:
                if step[0] == CALL:
                    res = await self._aopen(client, ctx, step[1], step[2])
                else:
                    if self._virtual_sleep:
                        r = self._sleep(step[1])
                        if inspect.isawaitable(r):
                            await r
                        ctx.slept += step[1]
                    else:
                        await asyncio.sleep(step[1])
                    res = None
                step = gen.send(res)
        except StopIteration as stop:
            served, res = stop.value
            if served is None:
                self._fail(ctx, res)
            return LiveStream(self, ctx, served, res)
        except BaseException:
            self._abort(ctx)  # cancelled before the first event: one record, no hold
            raise

    def stream(self, **kw: Any) -> SyncStream | ReplayStream:
        """`astream` for sync code: the same keywords, routing, records and budgets; the
        returned `SyncStream` is a plain iterator of the same events (`close()` or leaving
        `with` ends it early, logged as client_closed)."""
        kw.pop("stream", None)
        kw.pop("stream_options", None)
        kw["_stream"] = True
        while True:
            ctx, early = self._begin(**kw)
            if early is None:
                break
            if isinstance(early, Completion):
                return ReplayStream(early)
            early.wait(_IDEM_WAIT_S)  # the same request is in flight: wait, then look again
        gen = self._loop(ctx)
        client = self.http_client
        try:
            step = next(gen)
            while True:
                if step[0] == CALL:
                    res = self._open(client, ctx, step[1], step[2])
                else:
                    self._sleep(step[1])
                    if self._virtual_sleep:
                        ctx.slept += step[1]
                    res = None
                step = gen.send(res)
        except StopIteration as stop:
            served, res = stop.value
            if served is None:
                self._fail(ctx, res)
            return SyncStream(self, ctx, served, res)
        except BaseException:
            self._abort(ctx)
            raise

    def _open(
        self, client: httpx.Client, ctx: RequestCtx, a: Attempt, timeout: float
    ) -> SyncUpstreamStream | ProviderError:
        """`_aopen` over the sync client."""
        t = self._timer()
        secret = self._secret(a)
        if secret is None:
            return self._note(ctx, a, t, _missing_secret(a))
        prov = self._providers[a.provider]
        up: SyncUpstreamStream | None = None
        try:
            up = prov.adapter.open_stream(
                client,
                ctx.body,
                upstream_model=a.upstream_model,
                secret=secret,
                base_url=prov.base_url,
                timeout=timeout,
            )
            first = up.next_event_sync(timeout - (self._timer() - t))
            if first is not None:
                up.push_back(first)
        except ProviderError as e:
            if up is not None:
                if e.http_status is None:
                    e.http_status = up.resp.status_code
                up.close()
            return self._note(ctx, a, t, e)
        except BaseException:
            if up is not None:
                up.close()
            raise
        self._note(ctx, a, t, ProviderResult({}, Usage()))
        return up

    async def _aopen(
        self, client: httpx.AsyncClient, ctx: RequestCtx, a: Attempt, timeout: float
    ) -> UpstreamStream | ProviderError:
        """Start a stream on one route and read up to its first event: anything that goes
        wrong until then is this attempt's failure (and the loop fails over)."""
        t = self._timer()
        secret = self._secret(a)
        if secret is None:
            return self._note(ctx, a, t, _missing_secret(a))
        prov = self._providers[a.provider]
        up: UpstreamStream | None = None
        try:
            up = await prov.adapter.aopen_stream(
                client,
                ctx.body,
                upstream_model=a.upstream_model,
                secret=secret,
                base_url=prov.base_url,
                timeout=timeout,
            )
            first = await up.next_event(timeout - (self._timer() - t))
            if first is not None:
                up.push_back(first)
        except ProviderError as e:
            if up is not None:
                if e.http_status is None:
                    e.http_status = up.resp.status_code  # broke off after a 2xx start
                await up.aclose()
            return self._note(ctx, a, t, e)
        except BaseException:
            if up is not None:
                await up.aclose()
            raise
        self._note(ctx, a, t, ProviderResult({}, Usage()))
        return up

    def log_refused(
        self,
        code: int,
        message: str = "",
        *,
        api_key_id: str | None = None,
        workload: str | None = None,
        workflow_id: str | None = None,
        idempotency_key: str | None = None,
        app: str | None = None,
        start: dt.datetime | None = None,
        t0: float | None = None,
        stream: bool = False,
    ) -> str:
        """Log a request refused before it reached the router (a server's own checks:
        authentication, body size, concurrency bounds) as one error record through the
        same encoder; returns its request id. `start`/`t0` are the request's arrival
        (router clock / timer readings; default now). The caller fields come from the API
        key (and the workload, if it resolves; `app` as in `complete`); nothing else of the
        request is logged."""
        ctx = RequestCtx(
            "req_" + self._new_id(),
            self._timer() if t0 is None else t0,
            self._clock() if start is None else start,
            api_key_id if api_key_id in self._api_ids else None,
            [],
            idempotency_key if isinstance(idempotency_key, str) else None,
            workflow_id if isinstance(workflow_id, str) else None,
            stream=stream,
            app=app if isinstance(app, str) and app else None,
        )
        if ctx.api_key_id is not None:
            req = RouteRequest(
                api_key_id=ctx.api_key_id,
                models=(),
                workload=workload if isinstance(workload, str) else None,
                member_id=None,
                zdr=False,
                at=ctx.start,
            )
            r = self._resolve(req)
            if isinstance(r, RouteError) and req.workload is not None:
                r = self._resolve(dataclasses.replace(req, workload=None))
            ctx.resolved = None if isinstance(r, RouteError) else r
        self._record(ctx, None, None, None, RouteError(int(code), message))
        return ctx.request_id

    def record_outcome(
        self,
        *,
        request_id: str | None = None,
        workflow_id: str | None = None,
        accepted: bool,
        score: float | None = None,
        reason: str | None = None,
        ts: dt.datetime | None = None,
    ) -> str:
        """Append an outcome event for a request or a workflow (the last one wins);
        returns its `event_id`."""
        if not request_id and not workflow_id:
            raise ValueError("record_outcome needs request_id or workflow_id")
        event_id = "evt_" + self._new_id()
        self.log.write_outcome(
            {
                "schema_version": SCHEMA_VERSION,
                "event_id": event_id,
                "ts": format_ts(ts or self._clock()),
                "request_id": request_id,
                "workflow_id": workflow_id,
                "accepted": bool(accepted),
                "score": None if score is None else float(score),
                "reason": reason,
            }
        )
        return event_id

    # ------------------------------------------------------------------ execution

    def _begin(
        self,
        *,
        api_key: str | None = None,
        api_key_id: str | None = None,
        model: str | None = None,
        models: list[str] | None = None,
        messages: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
        tools: list[dict[str, Any]] | None = None,
        workload: str | None = None,
        member_id: str | None = None,
        zdr: bool = False,
        provider: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        workflow_id: str | None = None,
        app: str | None = None,
        _stream: bool = False,
        **params: Any,
    ) -> tuple[RequestCtx, Completion | threading.Event | None]:
        """Authenticate, validate, plan and reserve the budget. Raises RouteError (after
        logging it) for 400/401/402/403/404; returns a stored Completion for a replay."""
        start = self._clock()
        req_models = list(models) if models else ([model] if model else [])
        if model and models and models[0] != model:
            req_models = [model, *[m for m in models if m != model]]
        bad_input = None
        if not all(isinstance(m, str) and m for m in req_models):
            bad_input, req_models = "model/models must be non-empty strings", []
        if not (idempotency_key is None or isinstance(idempotency_key, str)) or not (
            workflow_id is None or isinstance(workflow_id, str)
        ):
            bad_input = "idempotency_key and workflow_id must be strings"
            idempotency_key = workflow_id = None
        if app is not None and not (isinstance(app, str) and app):
            bad_input, app = "app must be a non-empty string", None
        ctx = RequestCtx(
            "req_" + self._new_id(),
            self._timer(),
            start,
            None,
            req_models,
            idempotency_key,
            workflow_id,
            stream=_stream,
            app=app,
        )

        if api_key is not None:
            kid = (
                self._api_by_sha.get(hashlib.sha256(api_key.encode()).hexdigest())
                if isinstance(api_key, str)
                else None
            )
            if kid is None:
                self._fail(ctx, RouteError(UNKNOWN_API_KEY, "unknown API key"))
            if api_key_id is not None and api_key_id != kid:
                self._fail(
                    ctx, RouteError(UNKNOWN_API_KEY, "api_key does not belong to api_key_id")
                )
            api_key_id = kid
        if api_key_id is None or api_key_id not in self._api_ids:
            self._fail(
                ctx,
                RouteError(
                    UNKNOWN_API_KEY,
                    f"unknown API key id {api_key_id!r}" if api_key_id else "no API key given",
                ),
            )
        ctx.api_key_id = api_key_id
        if bad_input is not None:
            self._fail(ctx, RouteError(HTTP_BAD_REQUEST, bad_input))

        if idempotency_key is not None:
            hit, waiting = self._idem.claim(ctx, start.timestamp())
            if hit is not None:
                ctx.resolved = hit[1]
                return ctx, self._replay(ctx, hit[0])
            if waiting is not None:
                return ctx, waiting
        try:
            return self._prepare(
                ctx,
                start,
                req_models,
                messages,
                max_tokens,
                tools,
                workload,
                member_id,
                zdr,
                provider,
                params,
            )
        except BaseException:
            self._idem_done(ctx)  # never leave duplicates waiting on a call that died
            raise

    def _prepare(
        self,
        ctx: RequestCtx,
        start: dt.datetime,
        req_models: list[str],
        messages: Any,
        max_tokens: Any,
        tools: Any,
        workload: str | None,
        member_id: str | None,
        zdr: bool,
        provider: Mapping[str, Any] | None,
        params: dict[str, Any],
    ) -> tuple[RequestCtx, None]:
        """Validate, plan and reserve the budget (the part of `_begin` after the
        idempotency check). Raises RouteError (logged) for 400/402/403/404."""
        api_key_id = ctx.api_key_id
        assert api_key_id is not None

        if not req_models:
            self._fail(ctx, RouteError(HTTP_BAD_REQUEST, "give model or models"))
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and "role" in m for m in messages)
        ):
            self._fail(
                ctx,
                RouteError(
                    HTTP_BAD_REQUEST, "messages must be a non-empty list of {role, content}"
                ),
            )
        if params.get("stream"):
            self._fail(
                ctx,
                RouteError(
                    HTTP_BAD_REQUEST,
                    "stream=True is not a complete()/acomplete() option: use Router.astream",
                ),
            )
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens <= 0):
            self._fail(ctx, RouteError(HTTP_BAD_REQUEST, "max_tokens must be a positive integer"))
        cooling = self.cooling_keys(start.timestamp())
        # Steady traffic repeats a handful of request shapes: remember (request, caller,
        # plan) per shape, UTC day and cooling set, skipping the planner's own memo lookup.
        shape = None
        hit = None
        day = start.date() if start.tzinfo is dt.UTC else start.astimezone(dt.UTC).date()
        if not provider:
            shape = (api_key_id, tuple(req_models), workload, member_id, bool(zdr), bool(tools))
            hit = self._shapes.get(shape)
            if hit is not None and (hit[0] != day or hit[1] is not cooling):
                hit = None
        if hit is not None:
            resolved, plan = hit[2], hit[3]
        else:
            try:
                rreq = self._route_request(
                    api_key_id,
                    tuple(req_models),
                    workload,
                    member_id,
                    zdr,
                    provider,
                    tools,
                    start,
                )
            except RouteError as e:
                self._fail(ctx, e)
            resolved = self._resolve(rreq)
            if isinstance(resolved, RouteError):
                self._fail(ctx, resolved)
            plan = self.planner.plan(rreq, cooling_keys=cooling)
            if shape is not None:
                if len(self._shapes) > 8192:
                    self._shapes.clear()
                self._shapes[shape] = (day, cooling, resolved, plan)
        ctx.resolved = resolved
        ctx.plan = plan
        if plan.error is not None:
            self._fail(ctx, plan.error)

        max_out = max_tokens or self.settings.default_max_output_tokens
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_out}
        if tools:
            body["tools"] = tools
        if params:
            body.update(params)
        ctx.body = body
        chars = prompt_chars(messages, tools)
        ctx.prompt_chars = chars
        ctx.n_messages = len(messages)
        ctx.max_out = max_out
        # The hold is deliberately high (2 characters a token): it must not be below what
        # the provider will bill.
        est = chars // 2 + 16 * len(messages) + 16
        bound = self._max_cost(plan, est, max_out, start)
        try:
            ctx.reservation = self.guard.reserve(
                api_key_id, resolved.member_id, bound, plan.attempts[0].credential, start
            )
        except RouteError as e:
            self._fail(ctx, e)
        return ctx, None

    def _loop(self, ctx: RequestCtx) -> Generator[tuple, Any, tuple]:
        """The attempt loop of this request (routing_core.attempts)."""
        return attempt_loop(
            ctx,
            settings=self.settings,
            timeouts=self._timeouts,
            rng=self._rng,
            timer=self._timer,
            cool_down=self.cool_down,
        )

    def _bounded(
        self, ctx: RequestCtx, served: Attempt, usage: Usage, state: str, out_chars: int
    ) -> tuple[Usage, str]:
        """The usage to price for a served attempt (routing_core.usage.bound_usage)."""
        return bound_usage(
            usage,
            state,
            max_tokens=ctx.max_out,
            context_length=self._context.get((served.model, served.provider), 128_000),
            prompt_estimate=estimate_prompt_tokens(ctx.prompt_chars, ctx.n_messages),
            output_estimate=text_tokens(out_chars),
        )

    def _secret(self, a: Attempt) -> str | None:
        if a.key_id is not None:
            return self._key_secret.get(a.key_id)
        return self._shared_secret.get(a.provider)

    def _note(
        self, ctx: RequestCtx, a: Attempt, t: float, res: ProviderResult | ProviderError
    ) -> ProviderResult | ProviderError:
        ok = isinstance(res, ProviderResult)
        ctx.attempts.append(
            {
                "model": a.model,
                "provider": a.provider,
                "credential": a.credential,
                "key_id": a.key_id,
                "status": "ok" if ok else res.kind,
                "http_status": res.http_status,
                "error_type": None if ok else res.error_type,
                "latency_ms": round((self._timer() - t) * 1000.0, 3),
            }
        )
        if not ok:
            ctx.kinds.append(res.kind)
        return res

    def _call(
        self, client: httpx.Client, ctx: RequestCtx, a: Attempt, timeout: float
    ) -> ProviderResult | ProviderError:
        t = self._timer()
        secret = self._secret(a)
        if secret is None:
            return self._note(ctx, a, t, _missing_secret(a))
        prov = self._providers[a.provider]
        try:
            res: ProviderResult | ProviderError = prov.adapter.send(
                client,
                ctx.body,
                upstream_model=a.upstream_model,
                gateway_model=a.model,
                secret=secret,
                base_url=prov.base_url,
                timeout=timeout,
            )
        except ProviderError as e:
            res = e
        return self._note(ctx, a, t, res)

    async def _acall(
        self, client: httpx.AsyncClient, ctx: RequestCtx, a: Attempt, timeout: float
    ) -> ProviderResult | ProviderError:
        t = self._timer()
        secret = self._secret(a)
        if secret is None:
            return self._note(ctx, a, t, _missing_secret(a))
        prov = self._providers[a.provider]
        try:
            res: ProviderResult | ProviderError = await prov.adapter.asend(
                client,
                ctx.body,
                upstream_model=a.upstream_model,
                gateway_model=a.model,
                secret=secret,
                base_url=prov.base_url,
                timeout=timeout,
            )
        except ProviderError as e:
            res = e
        return self._note(ctx, a, t, res)

    # ------------------------------------------------------------------ records

    def _record(
        self,
        ctx: RequestCtx,
        served: Attempt | None,
        usage: Usage | None,
        cost: Cost | None,
        error: RouteError | None,
        *,
        usage_source: str | None = None,
        ttfb_ms: float | None = None,
        error_reason: str | None = None,
    ) -> tuple[bool, str | None]:
        """Append the request record (routing_core.record, the one encoder); returns
        (fallback_used, fallback_reason)."""
        fb, reason = fallback_of(ctx, served)
        self._writer.write(
            ctx,
            served,
            usage,
            cost,
            None if error is None else error.code,
            fb,
            reason,
            round((self._timer() - ctx.t0 + ctx.slept) * 1000.0, 3),
            usage_source=usage_source,
            ttfb_ms=ttfb_ms,
            error_reason=error_reason,
        )
        return fb, reason

    def _fail(self, ctx: RequestCtx, err: RouteError) -> NoReturn:
        """Log an error record and raise the error (a copy carrying this request's id:
        plan errors are memoised and shared) to the caller."""
        if ctx.reservation is not None:
            self.guard.release(ctx.reservation)
        err = RouteError(err.code, err.message, {**err.metadata, "request_id": ctx.request_id})
        self._record(ctx, None, None, None, err)
        self._idem_done(ctx)
        raise err

    def _abort(self, ctx: RequestCtx) -> None:
        """The caller went away mid-request (asyncio cancellation, KeyboardInterrupt):
        release the hold and log the request as error 499 (client closed request)."""
        if ctx.reservation is not None:
            self.guard.release(ctx.reservation)
        self._record(ctx, None, None, None, RouteError(CLIENT_CLOSED, "request abandoned"))
        self._idem_done(ctx)

    def _finish(self, ctx: RequestCtx, outcome: tuple) -> Completion:
        served, res = outcome
        if served is None:
            self._fail(ctx, res)
        state = res.usage_state
        usage = res.usage
        source = "provider"
        if (
            state != "ok"
            or usage.output_tokens > ctx.max_out + MAX_TOKENS_TOLERANCE
            or usage.reasoning_tokens > usage.output_tokens
            or usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
            > self._context.get((served.model, served.provider), 0)
        ):
            usage, source = self._bounded(
                ctx, served, usage, state, 0 if state == "ok" else response_chars(res.body)
            )
            if source != "provider":
                res.body["usage"] = usage_to_openai(usage)  # the caller sees what is booked
        try:
            cost = self.prices.cost(served, usage, ctx.start, self.fee_meter)
        except ArithmeticError as e:  # cannot happen for bounded usage; never a traceback
            self._fail(ctx, RouteError(UPSTREAM_FAILED, f"could not price the answer: {e}"))
        if ctx.reservation is not None:
            self.guard.settle(ctx.reservation, cost)
        fb, reason = self._record(ctx, served, usage, cost, None, usage_source=source)
        body = res.body
        body["provider"] = served.provider
        comp = Completion(
            request_id=ctx.request_id,
            body=body,
            model=served.model,
            provider=served.provider,
            upstream_model=served.upstream_model,
            credential=served.credential,
            key_id=served.key_id,
            usage=usage,
            cost=cost,
            attempts=ctx.attempts,
            fallback_used=fb,
            fallback_reason=reason,
            zdr=served.zdr,
            usage_source=source,
        )
        self._remember(ctx, comp)
        return comp

    def _remember(self, ctx: RequestCtx, comp: Completion) -> None:
        """Keep a served answer for idempotent replays; release waiting duplicates."""
        self._idem.remember(ctx, comp, self.settings.idempotency_ttl_s)

    def _fallback_info(self, ctx: RequestCtx, served: Attempt) -> tuple[bool, str | None]:
        return fallback_of(ctx, served)

    def _idem_done(self, ctx: RequestCtx) -> None:
        """Let calls waiting on this call's idempotency key look again."""
        self._idem.release(ctx)

    def _replay(self, ctx: RequestCtx, stored: Completion) -> Completion:
        """An idempotent replay: no provider call; the record has no attempts and zero
        usage/cost (the original record carries the spend) and points at the served route."""
        served = Attempt(
            stored.model,
            stored.provider,
            stored.credential,
            stored.key_id,
            "shared" if stored.credential == "shared" else "prioritized",
            stored.upstream_model,
            stored.zdr,
        )
        self._record(ctx, served, None, None, None)
        return Completion(
            request_id=stored.request_id,
            body=stored.body,
            model=stored.model,
            provider=stored.provider,
            upstream_model=stored.upstream_model,
            credential=stored.credential,
            key_id=stored.key_id,
            usage=stored.usage,
            cost=stored.cost,
            attempts=stored.attempts,
            fallback_used=stored.fallback_used,
            fallback_reason=stored.fallback_reason,
            zdr=stored.zdr,
            replayed=True,
        )


def _random_id() -> str:
    return _secrets.token_hex(12)


def _missing_secret(a: Attempt) -> ProviderError:
    where = f"BYOK key {a.key_id}" if a.key_id else f"shared capacity on {a.provider}"
    return ProviderError(AUTH, f"no secret configured for {where}", error_type="missing_secret")
