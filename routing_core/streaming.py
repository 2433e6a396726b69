"""Streamed completions: the neutral event type both wire formats are parsed into, the
incremental server-sent-events decoder, the per-wire stream parsers, and `RouterStream`,
what `Router.astream` returns.

    stream = await router.astream(api_key=..., model="m", messages=[...], max_tokens=200)
    # raises RouteError (same codes as acomplete) if no route could start a stream
    async with stream:                     # aclose() on exit: an early exit is client_closed
        stream.model, stream.provider      # the served route, known before the first event
        async for ev in stream:
            if isinstance(ev, TextDelta): ...
            elif isinstance(ev, ToolCallDelta): ...
            elif isinstance(ev, Finish): ...        # finish_reason, OpenAI spelling
            elif isinstance(ev, StreamUsage): ...   # last event: bounded usage and cost

Sync code: `with router.stream(...) as stream: for ev in stream: ...` (a `SyncStream`, the
same events and records).

Failover happens only inside `astream`, before the first event reaches the consumer: the
upstream's answer status and its first event are read there, and a route that fails
before that moves on to the next one exactly like `acomplete`. Once the consumer has an
event the route is fixed; a break after that is reported, never retried.

Exactly one request record is written per stream, when it ends:
- the upstream finished: `status: ok`, usage from the provider's final chunk/event
  (bounded like any usage, see routing_core.usage), `stream: true`, `ttfb_ms`;
- the consumer stopped early (`aclose()`, leaving `async with`, task cancelled: a client
  disconnect): `status: error`, `error_code: 499`, `error_reason: client_closed`;
- the upstream broke mid-stream (connection dropped, an `error` event, unparseable data,
  no chunk within the deadline): `status: error`, `error_code: 502` (504 for a stall past
  the deadline), `error_reason: upstream_interrupted`.
In both error cases the usage is what the provider reported so far, completed by an
estimate from the prompt and the text streamed so far (`usage_source: estimated`), and the
budget reservation settles to its cost: an interrupted stream is still billed upstream.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from routing_core.schema import Cost, Usage

if TYPE_CHECKING:  # the router imports this module; no import back at run time
    from routing_core.providers.base import UpstreamStream
    from routing_core.request import Completion, RequestCtx
    from routing_core.router import Router
    from routing_core.routes import Attempt

# `finish_reason` values (OpenAI spelling; the Anthropic wire maps onto them).
FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_TOOL_CALLS = "tool_calls"
FINISH_CONTENT_FILTER = "content_filter"

# `error_reason` of a stream that did not finish (record field, with error_code 499/502/504).
CLIENT_CLOSED = "client_closed"
UPSTREAM_INTERRUPTED = "upstream_interrupted"


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's text, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of one tool call. `index` numbers the tool calls of the answer from 0. The
    first delta of a call carries its `id` and `name`; `arguments` is the next piece of
    the call's JSON arguments text (concatenate the pieces)."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class Finish:
    """Why the answer ended: stop | length | tool_calls | content_filter."""

    reason: str


@dataclass(frozen=True, slots=True)
class StreamUsage:
    """The last event of a finished stream: the usage as recorded (bounded; `usage_source`
    provider | estimated | clamped) and its cost by billing layer. Its record is already
    written when this event is yielded."""

    usage: Usage
    cost: Cost
    usage_source: str

    @property
    def total_usd(self) -> Decimal:
        return self.cost.total_usd


StreamEvent = TextDelta | ToolCallDelta | Finish | StreamUsage


class RouterStream:
    """One streamed completion in flight (returned by `Router.astream`). Public, read-only:
    `request_id`, `model` (gateway slug), `provider`, `upstream_model`, `credential`,
    `key_id`, `zdr`, `attempts` (the record's attempt list so far), `fallback_used`,
    `fallback_reason`. Iterate it for `StreamEvent`s; `aclose()` (or leaving `async with`)
    ends it early, which is logged as client_closed. After the end: `usage`, `cost`,
    `usage_source`, `status` ("ok" | "error"), `error_code`, `error_reason`."""

    # Implemented in routing_core.router (RouterStream is created there); this base class
    # is the interface the gateway codes against.
    request_id: str
    model: str
    provider: str
    upstream_model: str
    credential: str
    key_id: str | None
    zdr: bool

    def __aiter__(self) -> RouterStream:
        return self

    async def __anext__(self) -> StreamEvent:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> RouterStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class LiveStream(RouterStream):
    """A stream being served by one upstream route (made by `Router.astream`)."""

    def __init__(self, router: Router, ctx: RequestCtx, served: Attempt, up: UpstreamStream):
        self._router = router
        self._ctx = ctx
        self._served = served
        self._up = up
        self.request_id = ctx.request_id
        self.model = served.model
        self.provider = served.provider
        self.upstream_model = served.upstream_model
        self.credential = served.credential
        self.key_id = served.key_id
        self.zdr = served.zdr
        self.attempts = ctx.attempts
        self.fallback_used, self.fallback_reason = router._fallback_info(ctx, served)
        self.usage: Usage | None = None
        self.cost: Cost | None = None
        self.usage_source: str | None = None
        self.status: str | None = None
        self.error_code: int | None = None
        self.error_reason: str | None = None
        self.ttfb_ms: float | None = None
        self._final: StreamUsage | None = None
        self._ended = False
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        # The answer is only assembled for an idempotent replay (an Idempotency-Key).
        self._keep = ctx.idempotency_key is not None

    def _elapsed_ms(self) -> float:
        ctx = self._ctx
        return round((self._router._timer() - ctx.t0 + ctx.slept) * 1000.0, 3)

    def _read_timeout(self) -> float:
        router, ctx = self._router, self._ctx
        assert ctx.plan is not None
        remaining = ctx.plan.deadline_s - (router._timer() - ctx.t0 + ctx.slept)
        return min(router._timeouts[self.provider], remaining)

    def _interrupted(self, e: Any) -> Exception:
        """Book an upstream break; the RouteError the consumer gets."""
        from routing_core.providers.base import TIMEOUT
        from routing_core.routes import RouteError

        code = 504 if e.kind == TIMEOUT else 502
        self._end(code, UPSTREAM_INTERRUPTED, e.message)
        return RouteError(
            code,
            f"upstream {self.provider} interrupted the stream: {e.message}",
            {"request_id": self.request_id, "error_reason": UPSTREAM_INTERRUPTED},
        )

    def _track(self, ev: Any) -> Any:
        """Note an event on its way to the consumer (first-event time, the answer so far)."""
        if self.ttfb_ms is None:
            self.ttfb_ms = self._elapsed_ms()
        if not self._keep:
            return ev
        if isinstance(ev, TextDelta):
            self._text.append(ev.text)
        elif isinstance(ev, ToolCallDelta):
            call = self._calls.setdefault(ev.index, {"id": "", "name": "", "arguments": []})
            if ev.id:
                call["id"] = ev.id
            if ev.name:
                call["name"] = ev.name
            call["arguments"].append(ev.arguments)
        elif isinstance(ev, Finish):
            self._finish = ev.reason
        return ev

    async def __anext__(self) -> StreamEvent:
        if self._final is not None:
            ev, self._final = self._final, None
            return ev
        if self._ended:
            raise StopAsyncIteration
        try:
            ev = await self._up.next_event(self._read_timeout())
        except _ProviderError as e:
            err = self._interrupted(e)
            with contextlib.suppress(Exception):
                await self._up.aclose()
            raise err from None
        except BaseException:  # cancelled: the consumer went away
            self._end(499, CLIENT_CLOSED, "stream abandoned by the consumer")
            with contextlib.suppress(BaseException):
                await self._up.aclose()
            raise
        if ev is None:
            with contextlib.suppress(Exception):
                await self._up.aclose()
            return self._complete()
        return self._track(ev)

    def _bounded(self) -> tuple[Usage, str]:
        parser = self._up.parser
        usage, state = parser.usage()
        return self._router._bounded(self._ctx, self._served, usage, state, parser.out_chars)

    def _complete(self) -> StreamUsage:
        """The upstream finished: book its (bounded) usage, settle, write the ok record."""
        self._ended = True
        router, ctx = self._router, self._ctx
        usage, source = self._bounded()
        cost = router.prices.cost(self._served, usage, ctx.start, router.fee_meter)
        if ctx.reservation is not None:
            router.guard.settle(ctx.reservation, cost)
        router._record(
            ctx, self._served, usage, cost, None, usage_source=source, ttfb_ms=self.ttfb_ms
        )
        self.usage, self.cost, self.usage_source = usage, cost, source
        self.status = "ok"
        if self._keep:
            router._remember(ctx, self._completion())
        else:
            router._idem_done(ctx)
        return StreamUsage(usage, cost, source)

    def _end(self, code: int, reason: str, message: str) -> None:
        """The stream ended early: book what the provider reported so far, completed by an
        estimate, settle to it and write the error record (exactly once)."""
        if self._ended:
            return
        self._ended = True
        from routing_core.routes import RouteError

        router, ctx = self._router, self._ctx
        usage, source = self._bounded()
        if source == "provider":
            source = "estimated"  # a stream cut short never has final usage
        cost = router.prices.cost(self._served, usage, ctx.start, router.fee_meter)
        if ctx.reservation is not None:
            router.guard.settle(ctx.reservation, cost)
        router._record(
            ctx,
            self._served,
            usage,
            cost,
            RouteError(code, message),
            usage_source=source,
            ttfb_ms=self.ttfb_ms,
            error_reason=reason,
        )
        self.usage, self.cost, self.usage_source = usage, cost, source
        self.status, self.error_code, self.error_reason = "error", code, reason
        router._idem_done(ctx)

    def _completion(self) -> Completion:
        """The finished stream as a Completion (kept for idempotent replays)."""
        from routing_core.providers.openai import usage_to_openai
        from routing_core.request import Completion

        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self._text) if self._text else None,
        }
        if self._calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": "".join(c["arguments"])},
                }
                for _, c in sorted(self._calls.items())
            ]
        assert self.usage is not None and self.cost is not None
        body = {
            "id": self.request_id,
            "object": "chat.completion",
            "created": int(self._ctx.start.timestamp()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish or "stop"}],
            "usage": usage_to_openai(self.usage),
            "provider": self.provider,
        }
        return Completion(
            request_id=self.request_id,
            body=body,
            model=self.model,
            provider=self.provider,
            upstream_model=self.upstream_model,
            credential=self.credential,
            key_id=self.key_id,
            usage=self.usage,
            cost=self.cost,
            attempts=self.attempts,
            fallback_used=self.fallback_used,
            fallback_reason=self.fallback_reason,
            zdr=self.zdr,
            usage_source=self.usage_source or "provider",
        )

    async def aclose(self) -> None:
        """End the stream. Before the upstream finished, this is a client_closed record
        (the usage so far, estimated); after its end marker, the normal ok record."""
        if not self._ended:
            if self._up.parser.done:
                self._complete()
            else:
                self._end(499, CLIENT_CLOSED, "stream closed by the consumer")
        self._final = None
        await self._up.aclose()

    def __del__(self) -> None:
        # Dropped without aclose(): still exactly one record, and no budget left held.
        if not getattr(self, "_ended", True):
            with contextlib.suppress(Exception):
                self._end(499, CLIENT_CLOSED, "stream dropped by the consumer")


class SyncStream(LiveStream):
    """`LiveStream` for sync code (made by `Router.stream`): iterate it for events;
    `close()` (or leaving `with`) ends it early, which is logged as client_closed."""

    def __iter__(self) -> SyncStream:
        return self

    def __next__(self) -> StreamEvent:
        if self._final is not None:
            ev, self._final = self._final, None
            return ev
        if self._ended:
            raise StopIteration
        up = self._up
        try:
            ev = up.next_event_sync(self._read_timeout())  # type: ignore[attr-defined]
        except _ProviderError as e:
            err = self._interrupted(e)
            with contextlib.suppress(Exception):
                up.close()  # type: ignore[attr-defined]
            raise err from None
        except BaseException:  # KeyboardInterrupt and the like: the consumer went away
            self._end(499, CLIENT_CLOSED, "stream abandoned by the consumer")
            with contextlib.suppress(BaseException):
                up.close()  # type: ignore[attr-defined]
            raise
        if ev is None:
            with contextlib.suppress(Exception):
                up.close()  # type: ignore[attr-defined]
            return self._complete()
        return self._track(ev)

    def close(self) -> None:
        """End the stream (client_closed before the upstream finished)."""
        if not self._ended:
            if self._up.parser.done:
                self._complete()
            else:
                self._end(499, CLIENT_CLOSED, "stream closed by the consumer")
        self._final = None
        self._up.close()  # type: ignore[attr-defined]

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReplayStream(RouterStream):
    """An idempotent replay as a stream: the stored answer, no provider call (its record
    was written by `astream`, like a replayed `acomplete`)."""

    def __init__(self, comp: Completion):
        self.request_id = comp.request_id
        self.model = comp.model
        self.provider = comp.provider
        self.upstream_model = comp.upstream_model
        self.credential = comp.credential
        self.key_id = comp.key_id
        self.zdr = comp.zdr
        self.attempts = comp.attempts
        self.fallback_used = comp.fallback_used
        self.fallback_reason = comp.fallback_reason
        self.usage: Usage | None = comp.usage
        self.cost: Cost | None = comp.cost
        self.usage_source: str | None = comp.usage_source
        self.status = "ok"
        self.error_code: int | None = None
        self.error_reason: str | None = None
        msg = comp.message
        events: list[StreamEvent] = []
        if msg.get("content"):
            events.append(TextDelta(msg["content"]))
        for i, call in enumerate(msg.get("tool_calls") or ()):
            fn = call.get("function") or {}
            events.append(ToolCallDelta(i, call.get("id"), fn.get("name"), fn.get("arguments", "")))
        events.append(Finish(comp.body["choices"][0].get("finish_reason") or "stop"))
        events.append(StreamUsage(comp.usage, comp.cost, comp.usage_source))
        self._events = events

    async def __anext__(self) -> StreamEvent:
        if not self._events:
            raise StopAsyncIteration
        return self._events.pop(0)

    async def aclose(self) -> None:
        self._events = []

    # The same replay for sync code (`Router.stream`).
    def __iter__(self) -> ReplayStream:
        return self

    def __next__(self) -> StreamEvent:
        if not self._events:
            raise StopIteration
        return self._events.pop(0)

    def close(self) -> None:
        self._events = []

    def __enter__(self) -> ReplayStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "CLIENT_CLOSED",
    "FINISH_CONTENT_FILTER",
    "FINISH_LENGTH",
    "FINISH_STOP",
    "FINISH_TOOL_CALLS",
    "UPSTREAM_INTERRUPTED",
    "Finish",
    "LiveStream",
    "ReplayStream",
    "RouterStream",
    "StreamEvent",
    "SyncStream",
    "StreamUsage",
    "TextDelta",
    "ToolCallDelta",
]

# At the end on purpose: the adapters import this module's event types, and this import
# (for LiveStream's error handling) must find them already defined.
from routing_core.providers.base import ProviderError as _ProviderError  # noqa: E402
