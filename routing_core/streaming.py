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

from dataclasses import dataclass
from decimal import Decimal

from routing_core.schema import Cost, Usage

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


__all__ = [
    "CLIENT_CLOSED",
    "FINISH_CONTENT_FILTER",
    "FINISH_LENGTH",
    "FINISH_STOP",
    "FINISH_TOOL_CALLS",
    "UPSTREAM_INTERRUPTED",
    "Finish",
    "RouterStream",
    "StreamEvent",
    "StreamUsage",
    "TextDelta",
    "ToolCallDelta",
]
