"""The gateway's ASGI app: the routing core behind HTTP.

    POST /v1/chat/completions   OpenAI Chat Completions (+ OpenRouter's models/provider/user)
    POST /v1/messages           Anthropic Messages
    GET  /v1/models             the models this API key may use
    POST /v1/outcomes           an outcome event for a request or workflow
    POST /v1/explain            the routing plan for a request body (explain --json shape)
    GET  /healthz  /readyz  /metrics

Every request goes through `Router.acomplete` / `Router.astream` (one pooled
`httpx.AsyncClient` per worker process), so policy, budgets and the request record are the
library's. Requests the gateway refuses itself (unknown API key, unreadable or oversized
body, unknown field, too many concurrent requests on one key) are logged here, one record
each, with the same contract. The two completion endpoints are raw ASGI callables
(`Completions`): Starlette's middleware, routing and request/response objects were about a
tenth of the gateway's CPU per request; the other endpoints, the 404/405 envelopes and the
lifespan are Starlette's. uvicorn (uvloop, httptools) measured faster than granian here
(docs/gateway.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import gc
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway import wire_anthropic, wire_openai
from gateway.auth import KeyTable, presented_key
from gateway.errors import GatewayError, anthropic_error, http_status, openai_error
from gateway.metrics import CONTENT_TYPE, GatewayMetrics
from gateway.transport import make_client
from routing_core.config import LedgerConfig, load_config
from routing_core.request_log import default_writer_id
from routing_core.router import Router
from routing_core.routes import RouteError, RouteRequest

log = logging.getLogger("byok_ledger.gateway")

MAX_HEADER_CHARS = 256
_JSON = "application/json"
_dumps = json.dumps


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_bytes(obj: Any) -> bytes:
    return _dumps(obj, separators=(",", ":")).encode()


# The request headers the gateway reads; the rest are never decoded.
_READ_HEADERS = frozenset(
    {
        b"authorization",
        b"x-api-key",
        b"content-length",
        b"x-workload",
        b"x-workflow-id",
        b"idempotency-key",
        b"x-title",
        b"http-referer",
    }
)


def read_headers(scope: Scope) -> dict[str, str]:
    """The headers the gateway reads, from an ASGI scope (names arrive lower-cased; the
    first of a repeated header counts, as with Starlette's `Headers.get`)."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in _READ_HEADERS:
            key = name.decode("latin-1")
            if key not in out:
                out[key] = value.decode("latin-1")
    return out


def caller_header(headers: Mapping[str, str], name: str) -> str | None:
    """A caller header's value (stripped), None when absent; 400 unless 1 to 256
    characters."""
    v = headers.get(name)
    if v is None:
        return None
    v = v.strip()
    if not v or len(v) > MAX_HEADER_CHARS:
        raise GatewayError(400, f"header {name} must be 1 to {MAX_HEADER_CHARS} characters")
    return v


def app_of(headers: Mapping[str, str]) -> str | None:
    """The calling app an OpenRouter-style request names: `X-Title` (1 to 256 characters,
    else 400 like the other caller headers), or when it is absent `HTTP-Referer` (used
    only when 1 to 256 characters: a long site URL must not fail the request)."""
    title = caller_header(headers, "x-title")
    if title is not None:
        return title
    referer = (headers.get("http-referer") or "").strip()
    return referer if 0 < len(referer) <= MAX_HEADER_CHARS else None


class Answer:
    """A whole JSON answer, as an ASGI callable: the completion endpoints send it
    straight from the raw ASGI path, the other endpoints hand it to Starlette."""

    __slots__ = ("status", "body", "headers", "content_type", "after")

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        content_type: bytes = b"application/json",
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.content_type = content_type
        # Bookkeeping for once the answer has left (see Completions): a callable or None.
        self.after: Callable[[], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", self.content_type),
            (b"content-length", b"%d" % len(self.body)),
        ]
        if self.headers:
            headers += self.headers
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """The collector of a serving process, once start-up is done. What start-up built
    (config, indexes, caches, imported modules) lives as long as the process, so it is
    moved out of the collector's sight (`gc.freeze`): a full collection then scans only
    what requests allocate, not ~50,000 long-lived objects (pauses of 20-100 ms mid-stream
    in bench/bench_gateway.py's 256 streams). The youngest generation is collected every
    10,000 net allocations instead of 700: each request allocates a few hundred objects
    that live until it ends, and collecting them 14 times as often took about half a
    second of every ten in that test, for a few MB of memory at most."""
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, g1, g2)


class Gateway:
    """One worker process's gateway: the router, the key table, the per-key concurrency
    counters and the metrics. `start()` inside the event loop, `stop()` at shutdown."""

    def __init__(
        self,
        config: LedgerConfig,
        *,
        secrets: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        writer_id: str | None = None,
        router_factory: Callable[..., Router] | None = None,
        own_process: bool = False,
    ) -> None:
        """`own_process`: this gateway is the process (`byok-ledger serve`'s workers), so
        `start()` may tune the process's garbage collector (`tune_gc`)."""
        self.own_process = own_process
        self.config = config
        self.settings = config.router
        self.keys = KeyTable(config.api_keys)
        self._api = {a.id: a for a in config.api_keys}
        self._secrets = secrets
        self._base_urls = base_urls
        self.writer_id = writer_id or "gateway-" + default_writer_id()
        self._router_factory = router_factory or Router
        self.router: Router | None = None
        self.metrics: GatewayMetrics | None = None
        self._client: httpx.AsyncClient | None = None
        self._busy: dict[str, int] = {}
        self._models_cache: dict[str, list[dict[str, Any]]] = {}
        self.streaming = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        pool = max(16, min(1024, self.settings.max_concurrent_per_key * 4))
        self._client = make_client(pool)
        # Building the router seeds the budget counters from the logs (blocking file reads,
        # and with Redis possibly waiting for another replica's seeding): off the loop.
        self.router = await asyncio.to_thread(
            self._router_factory,
            self.config,
            writer_id=self.writer_id,
            async_http_client=self._client,
            secrets=self._secrets,
            base_urls=self._base_urls,
        )
        self.streaming = hasattr(self.router, "astream")
        self.metrics = GatewayMetrics(self.router.guard, [m.id for m in self.config.models])
        if self.own_process:
            tune_gc()

    async def stop(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        if self.router is not None:
            await self.router.aclose()
            with contextlib.suppress(Exception):
                self.router.guard.close()
        if self._client is not None:
            await self._client.aclose()

    # ------------------------------------------------------------------ helpers

    async def _read_json(self, receive: Receive, headers: Mapping[str, str]) -> Any:
        limit = self.settings.max_body_bytes
        cl = headers.get("content-length")
        if cl is not None:
            if not cl.isdigit():
                raise GatewayError(400, "Content-Length must be a whole number")
            if int(cl) > limit:
                raise GatewayError(413, f"request body over {limit} bytes (router.max_body_bytes)")
        chunks: list[bytes] = []
        n = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":  # http.disconnect
                raise GatewayError(499, "the client closed the connection while sending the body")
            chunk = msg.get("body", b"")
            n += len(chunk)
            if n > limit:
                raise GatewayError(413, f"request body over {limit} bytes (router.max_body_bytes)")
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        try:
            return json.loads(
                chunks[0] if len(chunks) == 1 else b"".join(chunks), parse_constant=_no_constants
            )
        except (ValueError, RecursionError) as e:
            raise GatewayError(400, f"the request body is not valid JSON ({_short(e)})") from None

    def _caller_headers(self, headers: Mapping[str, str]) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        for header, arg in (
            ("x-workload", "workload"),
            ("x-workflow-id", "workflow_id"),
            ("idempotency-key", "idempotency_key"),
        ):
            v = caller_header(headers, header)
            if v is not None:
                kw[arg] = v
        app = app_of(headers)
        if app is not None:
            kw["app"] = app
        return kw

    def _acquire(self, key_id: str) -> None:
        n = self._busy.get(key_id, 0)
        cap = self.settings.max_concurrent_per_key
        if n >= cap:
            raise GatewayError(
                429,
                f"API key {key_id} has {cap} requests in flight on this gateway process "
                "(router.max_concurrent_per_key); retry shortly",
                {"retry_after_s": 1},
            )
        self._busy[key_id] = n + 1

    def _release(self, key_id: str) -> None:
        n = self._busy.get(key_id, 1) - 1
        if n > 0:
            self._busy[key_id] = n
        else:
            self._busy.pop(key_id, None)

    def _reject_record(
        self,
        key_id: str | None,
        code: int,
        t0: float,
        started: dt.datetime,
        headers: Mapping[str, str] | None = None,
        message: str = "",
    ) -> str:
        """Log a request the gateway refused before routing it (through the router's one
        record encoder); returns its request id."""
        assert self.router is not None
        h = headers or {}

        def bounded(name: str) -> str | None:
            v = h.get(name)
            return v.strip() if v and 0 < len(v.strip()) <= MAX_HEADER_CHARS else None

        return self.router.log_refused(
            code,
            message,
            api_key_id=key_id,
            workload=bounded("x-workload"),
            workflow_id=bounded("x-workflow-id"),
            idempotency_key=bounded("idempotency-key"),
            app=bounded("x-title") or bounded("http-referer"),
            start=started,
            t0=t0,
        )

    def _error(
        self, anthropic: bool, endpoint: str, code: int, message: str, meta: dict[str, Any]
    ) -> Answer:
        assert self.metrics is not None
        status = http_status(code)
        self.metrics.child(self.metrics.errors, endpoint, str(code)).inc()
        self.metrics.child(self.metrics.requests, endpoint, str(status)).inc()
        body = (anthropic_error if anthropic else openai_error)(code, message, meta)
        headers = []
        rid = meta.get("request_id")
        if isinstance(rid, str):
            headers.append((b"x-request-id", rid.encode("latin-1")))
        ra = meta.get("retry_after_s")
        if status == 429 and isinstance(ra, int | float) and math.isfinite(ra):
            headers.append((b"retry-after", str(max(1, math.ceil(ra))).encode()))
        return Answer(status, body, headers)

    def _ok(self, endpoint: str, body: dict[str, Any], rid: str | None = None) -> Answer:
        assert self.metrics is not None
        self.metrics.child(self.metrics.requests, endpoint, "200").inc()
        headers = [(b"x-request-id", rid.encode("latin-1"))] if rid else None
        return Answer(200, _json_bytes(body), headers)

    def _observe(self, comp: Any, endpoint: str, t0: float) -> None:
        m = self.metrics
        assert m is not None
        m.child(m.requests, endpoint, "200").inc()
        m.child(m.latency, endpoint).observe(time.perf_counter() - t0)
        if not getattr(comp, "replayed", False):
            m.observe_attempts(comp.attempts)
            m.observe_served(comp.model, comp.usage, comp.cost, comp.fallback_reason)

    def _authenticate(self, headers: Mapping[str, str], anthropic: bool) -> str | None:
        return self.keys.lookup(presented_key(headers, allow_x_api_key=anthropic))

    # ------------------------------------------------------------------ completions

    async def completion(
        self, scope: Scope, receive: Receive, anthropic: bool
    ) -> Answer | SSEResponse:
        """`POST /v1/chat/completions` or `/v1/messages` (raw ASGI: this is the hot path,
        and Starlette's request and response objects were a tenth of its CPU)."""
        endpoint = "/v1/messages" if anthropic else "/v1/chat/completions"
        t0 = time.perf_counter()
        started = dt.datetime.now(dt.UTC)
        router = self.router
        assert router is not None and self.metrics is not None
        headers = read_headers(scope)
        key_id = self._authenticate(headers, anthropic)
        if key_id is None:
            rid = self._reject_record(None, 401, t0, started, headers)
            return self._error(
                anthropic,
                endpoint,
                401,
                "unknown API key: send a router API key as 'Authorization: Bearer <key>'"
                + (" or 'x-api-key: <key>'" if anthropic else ""),
                {"request_id": rid},
            )
        try:
            body = await self._read_json(receive, headers)
            if anthropic:
                kw, stream = wire_anthropic.decode_messages(body)
                include_usage = True
            else:
                kw, stream, include_usage = wire_openai.decode_chat(body)
            kw.update(self._caller_headers(headers))
            if stream and not self.streaming:
                raise GatewayError(400, "streaming is not available in this build")
            self._acquire(key_id)
        except GatewayError as e:
            rid = self._reject_record(key_id, e.code, t0, started, headers, e.message)
            return self._error(
                anthropic, endpoint, e.code, e.message, {**e.metadata, "request_id": rid}
            )
        if stream:
            return await self._stream(key_id, kw, anthropic, include_usage, endpoint, t0)
        self.metrics.in_flight.inc()
        try:
            comp = await router.acomplete(api_key_id=key_id, **kw)
        except RouteError as e:
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
            return self._error(anthropic, endpoint, e.code, e.message, dict(e.metadata))
        finally:
            self._release(key_id)
            self.metrics.in_flight.dec()
        if anthropic:
            out = wire_anthropic.encode_message(
                comp.request_id, comp.body, comp.model, comp.usage, comp.cost
            )
        else:
            out = wire_openai.encode_completion(comp.body, comp.usage, comp.cost)
            out["request_id"] = comp.request_id
        answer = Answer(200, _json_bytes(out), [(b"x-request-id", comp.request_id.encode())])
        # The metrics wait until the answer is on its way (they are the caller's latency
        # otherwise); the record and the budget were settled before it.
        answer.after = functools.partial(self._observe, comp, endpoint, t0)
        return answer

    async def _stream(
        self,
        key_id: str,
        kw: dict[str, Any],
        anthropic: bool,
        include_usage: bool,
        endpoint: str,
        t0: float,
    ) -> Answer | SSEResponse:
        router = self.router
        m = self.metrics
        assert router is not None and m is not None
        m.in_flight.inc()
        try:
            stream = await router.astream(api_key_id=key_id, **kw)  # type: ignore[attr-defined]
        except RouteError as e:
            self._release(key_id)
            m.in_flight.dec()
            m.latency.labels(endpoint).observe(time.perf_counter() - t0)
            return self._error(anthropic, endpoint, e.code, e.message, dict(e.metadata))
        except BaseException:
            self._release(key_id)
            m.in_flight.dec()
            raise

        def done() -> None:
            self._release(key_id)
            m.in_flight.dec()
            m.latency.labels(endpoint).observe(time.perf_counter() - t0)
            m.requests.labels(endpoint, "200").inc()
            m.observe_attempts(list(getattr(stream, "attempts", []) or []))
            code = getattr(stream, "error_code", None)
            if code is not None:
                m.errors.labels(endpoint, str(code)).inc()
            usage, cost = getattr(stream, "usage", None), getattr(stream, "cost", None)
            if usage is not None and cost is not None:
                m.observe_served(
                    stream.model, usage, cost, getattr(stream, "fallback_reason", None)
                )

        events = (
            _anthropic_events(stream, m, endpoint, t0)
            if anthropic
            else _openai_chunks(stream, include_usage, m, endpoint, t0)
        )
        return SSEResponse(events, stream, done)

    # ------------------------------------------------------------------ other endpoints

    async def models(self, request: Request) -> Answer:
        key_id = self._authenticate(read_headers(request.scope), True)
        if key_id is None:
            return self._error(False, "/v1/models", 401, "unknown API key", {})
        data = self._models_cache.get(key_id)
        if data is None:
            data = []
            assert self.router is not None
            planner = self.router.planner
            for mdef in self.config.models:
                plan = planner.plan(
                    RouteRequest(api_key_id=key_id, models=(mdef.id,)), cooling_keys=frozenset()
                )
                if plan.error is None and plan.attempts:
                    first = mdef.endpoints[0]
                    data.append(
                        {
                            "id": mdef.id,
                            "object": "model",
                            "type": "model",
                            "created": 0,
                            "created_at": "1970-01-01T00:00:00Z",
                            "display_name": mdef.id,
                            "owned_by": first.provider,
                            "context_length": max(e.context_length for e in mdef.endpoints),
                            "providers": sorted({a.provider for a in plan.attempts}),
                        }
                    )
            self._models_cache[key_id] = data
        return self._ok(
            "/v1/models",
            {
                "object": "list",
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    async def explain(self, request: Request) -> Answer:
        endpoint = "/v1/explain"
        headers = read_headers(request.scope)
        key_id = self._authenticate(headers, True)
        if key_id is None:
            return self._error(False, endpoint, 401, "unknown API key", {})
        try:
            body = await self._read_json(request.receive, headers)
            if not isinstance(body, dict):
                raise GatewayError(400, "the request body must be a JSON object")
            if "messages" not in body:
                body = {**body, "messages": [{"role": "user", "content": ""}]}
            workload = body.pop("workload", None)
            kw, _, _ = wire_openai.decode_chat(body)
            caller = self._caller_headers(headers)
            if workload is not None:
                if not isinstance(workload, str) or not workload:
                    raise GatewayError(400, "workload must be a non-empty string")
                caller["workload"] = workload
        except GatewayError as e:
            return self._error(False, endpoint, e.code, e.message, e.metadata)
        models = kw["models"] or []
        if kw["model"] and kw["model"] not in models:
            models = [kw["model"], *models]
        assert self.router is not None
        try:
            plan = self.router.plan(
                api_key_id=key_id,
                models=models,
                workload=caller.get("workload"),
                member_id=kw["member_id"],
                zdr=kw["zdr"],
                provider=kw["provider"],
                tools=kw["tools"],
            )
        except RouteError as e:
            return self._error(False, endpoint, e.code, e.message, dict(e.metadata))
        return self._ok(endpoint, plan.to_dict())

    async def outcomes(self, request: Request) -> Answer:
        endpoint = "/v1/outcomes"
        headers = read_headers(request.scope)
        key_id = self._authenticate(headers, True)
        if key_id is None:
            return self._error(False, endpoint, 401, "unknown API key", {})
        try:
            body = await self._read_json(request.receive, headers)
            event = _decode_outcome(body)
        except GatewayError as e:
            return self._error(False, endpoint, e.code, e.message, e.metadata)
        assert self.router is not None
        event_id = self.router.record_outcome(**event)
        return self._ok(endpoint, {"event_id": event_id})

    async def healthz(self, request: Request) -> Response:
        return Response(b'{"status":"ok"}', 200, media_type=_JSON)

    async def readyz(self, request: Request) -> Response:
        router = self.router
        if router is None:
            return Response(b'{"status":"starting"}', 503, media_type=_JSON)
        state = router.guard.state
        if getattr(state, "shared", False):
            try:
                await asyncio.to_thread(state.r.ping)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - any store failure means not ready
                return Response(b'{"status":"budget state unreachable"}', 503, media_type=_JSON)
        return Response(b'{"status":"ready"}', 200, media_type=_JSON)

    async def metrics_endpoint(self, request: Request) -> Response:
        assert self.metrics is not None
        data = await asyncio.to_thread(self.metrics.render)
        return Response(data, 200, media_type=CONTENT_TYPE)


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _decode_outcome(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise GatewayError(400, "the outcome must be a JSON object")
    unknown = set(body) - {"request_id", "workflow_id", "accepted", "score", "reason"}
    if unknown:
        raise GatewayError(400, f"unknown outcome field(s) {sorted(unknown)}")
    out: dict[str, Any] = {}
    for name in ("request_id", "workflow_id", "reason"):
        v = body.get(name)
        if v is not None:
            if not isinstance(v, str) or not v or len(v) > 1000:
                raise GatewayError(400, f"{name} must be a non-empty string")
            out[name] = v
    if "request_id" not in out and "workflow_id" not in out:
        raise GatewayError(400, "give request_id or workflow_id")
    accepted = body.get("accepted")
    if not isinstance(accepted, bool):
        raise GatewayError(400, "accepted must be true or false")
    out["accepted"] = accepted
    score = body.get("score")
    if score is not None:
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
        ):
            raise GatewayError(400, "score must be a finite number")
        out["score"] = float(score)
    return out


# --------------------------------------------------------------------------- streaming


def _stream_failure(stream: Any) -> tuple[int, str] | None:
    code = getattr(stream, "error_code", None)
    if code is None or getattr(stream, "status", "ok") == "ok":
        return None
    reason = getattr(stream, "error_reason", None) or "upstream_interrupted"
    return int(code), f"the stream ended early ({reason})"


async def _openai_chunks(
    stream: Any, include_usage: bool, m: GatewayMetrics, endpoint: str, t0: float
) -> AsyncIterator[bytes]:
    from routing_core.streaming import Finish, StreamUsage, TextDelta, ToolCallDelta

    enc = wire_openai.ChunkEncoder(stream.request_id, stream.model, stream.provider)
    yield enc.role()
    first = True
    try:
        async for ev in stream:
            if first and isinstance(ev, TextDelta | ToolCallDelta):
                m.ttfb.labels(endpoint).observe(time.perf_counter() - t0)
                first = False
            if isinstance(ev, TextDelta):
                yield enc.text(ev.text)
            elif isinstance(ev, ToolCallDelta):
                yield enc.tool_call(ev.index, ev.id, ev.name, ev.arguments)
            elif isinstance(ev, Finish):
                yield enc.finish(ev.reason)
            elif isinstance(ev, StreamUsage) and include_usage:
                yield enc.usage(ev.usage, ev.cost)
    except RouteError as e:
        yield enc.error(e.code, e.message)
        return
    failed = _stream_failure(stream)
    if failed is not None:
        yield enc.error(*failed)
        return
    yield enc.done()


async def _anthropic_events(
    stream: Any, m: GatewayMetrics, endpoint: str, t0: float
) -> AsyncIterator[bytes]:
    from routing_core.streaming import Finish, StreamUsage, TextDelta, ToolCallDelta

    enc = wire_anthropic.EventEncoder(stream.request_id, stream.model)
    yield enc.start()
    first = True
    try:
        async for ev in stream:
            if first and isinstance(ev, TextDelta | ToolCallDelta):
                m.ttfb.labels(endpoint).observe(time.perf_counter() - t0)
                first = False
            if isinstance(ev, TextDelta):
                yield enc.text(ev.text)
            elif isinstance(ev, ToolCallDelta):
                yield enc.tool_call(ev.index, ev.id, ev.name, ev.arguments)
            elif isinstance(ev, Finish):
                enc.finish(ev.reason)
            elif isinstance(ev, StreamUsage):
                yield enc.end(ev.usage, ev.cost)
                return
    except RouteError as e:
        yield enc.error(e.code, e.message)
        return
    failed = _stream_failure(stream)
    yield enc.error(*(failed or (502, "the stream ended without usage")))


class SSEResponse:
    """A server-sent-events response that notices a client disconnect at once (not only
    at the next write): a watcher task waits for `http.disconnect` and cancels the writer,
    whose cancellation closes the router's stream (logged as client_closed). The router's
    stream is closed on every path, and `done` runs exactly once."""

    def __init__(self, events: AsyncIterator[bytes], stream: Any, done: Callable[[], None]):
        self.events = events
        self.stream = stream
        self.done = done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    gone.set()
                    task.cancel()
                    return

        watcher = asyncio.create_task(watch())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                        (b"x-request-id", self.stream.request_id.encode()),
                    ],
                }
            )
            async for chunk in self.events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone.is_set():
                raise
            task.uncancel()  # the client left: not an error of the server
        except OSError:
            pass  # the client left between two writes
        finally:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await self.events.aclose()  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                await self.stream.aclose()
            self.done()


# --------------------------------------------------------------------------- app


_INTERNAL = "internal gateway error; the server log has the details"


class Completions:
    """The raw ASGI endpoint of `POST /v1/chat/completions` (or `/v1/messages`): the
    gateway's answer, or a 500 envelope (never a traceback) when it fails unexpectedly
    before answering."""

    def __init__(self, gw: Gateway, anthropic: bool) -> None:
        self.gw = gw
        self.anthropic = anthropic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answer = await self.gw.completion(scope, receive, self.anthropic)
        except Exception:  # noqa: BLE001 - never a traceback in an answer
            log.exception("gateway: unexpected error on %s", scope["path"][:200])
            error = anthropic_error if self.anthropic else openai_error
            answer = Answer(500, error(500, _INTERNAL, {}))
        await answer(scope, receive, send)
        after = getattr(answer, "after", None)
        if after is not None:
            # After the write the answer's send scheduled (gateway/protocol.py coalesces a
            # loop iteration's writes into one at its end), so not on the caller's time.
            asyncio.get_running_loop().call_soon(after)


class GatewayApp:
    """The ASGI app: `POST /v1/chat/completions` and `POST /v1/messages` go straight to
    their raw ASGI endpoints; everything else (the other endpoints, 404/405 envelopes,
    the lifespan) is Starlette's. `state.gateway` is the `Gateway`."""

    def __init__(self, gw: Gateway, starlette: Starlette) -> None:
        self.gateway = gw
        self.starlette = starlette
        self.state = starlette.state
        self._fast = {
            "/v1/chat/completions": Completions(gw, anthropic=False),
            "/v1/messages": Completions(gw, anthropic=True),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._fast.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.starlette(scope, receive, send)


def create_app(
    config: LedgerConfig | str | os.PathLike[str],
    **gateway_kw: Any,
) -> GatewayApp:
    """The ASGI app for a config (object or path). Keywords go to `Gateway`."""
    cfg = config if isinstance(config, LedgerConfig) else load_config(config)
    gw = Gateway(cfg, **gateway_kw)

    def route(path: str, handler: Callable[[Request], Any], methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Any:
            try:
                return await handler(request)
            except Exception:  # noqa: BLE001 - never a traceback in an answer
                log.exception("gateway: unexpected error on %s", request.url.path)
                return Answer(500, openai_error(500, _INTERNAL, {}))

        return Route(path, endpoint, methods=methods)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        msg = "no such endpoint" if code == 404 else "method not allowed on this endpoint"
        body = (anthropic_error if request.url.path == "/v1/messages" else openai_error)(
            code, f"{msg}: {request.method} {request.url.path[:200]}", {}
        )
        return Response(body, code, media_type=_JSON)

    app = Starlette(
        exception_handlers={404: not_found, 405: not_found},
        routes=[
            # Also here (not only in GatewayApp's short cut) for Starlette's 405 answer
            # to another method and its redirect of a trailing slash.
            Route("/v1/chat/completions", Completions(gw, False), methods=["POST"]),
            Route("/v1/messages", Completions(gw, True), methods=["POST"]),
            route("/v1/models", gw.models, ["GET"]),
            route("/v1/explain", gw.explain, ["POST"]),
            route("/v1/outcomes", gw.outcomes, ["POST"]),
            Route("/healthz", gw.healthz, methods=["GET"]),
            Route("/readyz", gw.readyz, methods=["GET"]),
            Route("/metrics", gw.metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gw
    return GatewayApp(gw, app)


CONFIG_ENV = "BYOK_LEDGER_SERVE_CONFIG"


def app_from_env() -> GatewayApp:
    """uvicorn's factory in each worker process: the config path comes from
    BYOK_LEDGER_SERVE_CONFIG (set by `byok-ledger serve`)."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"{CONFIG_ENV} is not set; start the gateway with byok-ledger serve")
    return create_app(path, own_process=True)
