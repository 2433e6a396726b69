"""Fake LLM providers for tests, benches and the demo: real HTTP/1.1 servers on 127.0.0.1
(ephemeral port) speaking the OpenAI chat-completions and Anthropic Messages wire formats —
bodies, usage fields, error bodies and headers shaped like the real APIs — with
programmable faults (429 + Retry-After, 5xx / 529, stalls past the client timeout, revoked
keys, per-key rate limits, outage windows by the fake's own clock).

Streaming (`"stream": true` in the body): OpenAI chat-completion chunks as server-sent
events ending in `data: [DONE]` (a final usage chunk with empty `choices` when
`stream_options.include_usage` is set), or Anthropic Messages events (message_start,
content_block_start, ping, content_block_delta text_delta / input_json_delta,
content_block_stop, message_delta with usage, message_stop), sent with chunked transfer
encoding. Mid-stream faults: `stream_drop` (the connection is cut after `after` events),
`stream_stall` (the stream stops for `delay_s` after `after` events), `stream_error` (an
error event after `after` events), `stream_omit_usage` (no usage at all), `stream_no_end`
(the body ends cleanly without the end marker: no `[DONE]` / `message_stop`). `wire_usage`
replaces the usage object on the wire (absurd, string or missing usage for bounding tests).

Every request the fake answers is recorded in `served` (timestamp from `clock`, the key's
account label, upstream model, normalised usage, HTTP status), which is what a simulator
turns into the provider's invoice: only `status == 200` entries carry usage.

    with FakeProvider("openai", name="openai", keys={"sk-test": "proj_a"}) as fp:
        fp.add_fault("rate_limit", key="proj_a", times=1, retry_after=2)
        ... base_url=fp.url ...
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from routing_core.providers import shared_secret_env
from routing_core.schema import Usage

# A stall never lasts longer than this, so a forgotten fault cannot hang a test run.
MAX_STALL_S = 10.0
SHARED_LABEL = "shared"  # account label of the platform's pooled key in a fleet

STREAM_FAULTS = (
    "stream_drop",
    "stream_stall",
    "stream_error",
    "stream_omit_usage",
    "stream_no_end",
)
FAULT_KINDS = (
    *STREAM_FAULTS,
    "rate_limit",
    "server_error",
    "overloaded",
    "timeout",
    "revoked",
    "context_length",
    "bad_request",
)


@dataclass(slots=True)
class Fault:
    """One programmable failure. Matches requests by key label and upstream model (None =
    any) inside [start, end) of the fake's clock; fires on every `every`-th match, at most
    `times` times (None = unlimited)."""

    kind: str
    key: str | None = None
    model: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    every: int = 1
    times: int | None = None
    retry_after: str | float | None = 1  # Retry-After header of a 429 (seconds or HTTP date)
    status: int | None = None  # server_error status (default 500)
    delay_s: float = 2.0  # timeout / stream_stall: how long it stalls (capped at MAX_STALL_S)
    after: int = 2  # stream faults: events sent before the fault strikes
    seen: int = 0
    fired: int = 0

    def matches(self, key: str, model: str, now: dt.datetime) -> bool:
        if self.key is not None and self.key != key:
            return False
        if self.model is not None and self.model != model:
            return False
        if self.start is not None and now < self.start:
            return False
        if self.end is not None and now >= self.end:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.seen += 1
        if self.seen % max(1, self.every):
            return False
        self.fired += 1
        return True


@dataclass(frozen=True, slots=True)
class Served:
    """One answered request, as the provider's own metering sees it."""

    ts: dt.datetime
    provider: str
    key: str  # account label of the key used ("" when the key was unknown)
    model: str  # upstream model
    usage: Usage
    status: int
    request_id: str
    error_type: str | None = None


def text_of(body: dict[str, Any]) -> str:
    """All prompt text of an OpenAI or Anthropic request body (for token estimates)."""
    parts: list[str] = []

    def add(content: Any) -> None:
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for p in content:
                if isinstance(p, dict):
                    if isinstance(p.get("text"), str):
                        parts.append(p["text"])
                    elif "content" in p:
                        add(p["content"])

    add(body.get("system"))
    for m in body.get("messages") or ():
        if isinstance(m, dict):
            add(m.get("content"))
    return "".join(parts)


def default_usage(body: dict[str, Any]) -> Usage:
    """Deterministic usage: ~4 characters a token in, a short answer out."""
    n_in = max(1, len(text_of(body)) // 4)
    cap = body.get("max_tokens") or body.get("max_completion_tokens") or 4096
    return Usage(input_tokens=n_in, output_tokens=max(1, min(int(cap), 8 + n_in % 17)))


class FakeProvider:
    """One fake provider account surface on an ephemeral loopback port."""

    def __init__(
        self,
        api: str,
        *,
        name: str,
        keys: Mapping[str, str],
        clock: Callable[[], dt.datetime] | None = None,
        usage_fn: Callable[[dict[str, Any]], Usage] | None = None,
        models: Mapping[str, int] | None = None,
        latency_s: float = 0.0,
        wire_usage: Callable[[dict[str, Any]], Any] | None = None,
    ):
        """`keys`: secret -> account label. `models`: upstream model -> context length
        (None accepts any model with a 200k context). `latency_s`: real processing delay.
        `wire_usage(body)`: the usage object to put on the wire instead of the real one
        (`OMIT` leaves it out), for answers with absurd or missing usage."""
        if api not in ("openai", "anthropic"):
            raise ValueError(f"api must be 'openai' or 'anthropic', got {api!r}")
        self.api = api
        self.name = name
        self.keys = dict(keys)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.usage_fn = usage_fn or default_usage
        self.models = dict(models) if models is not None else None
        self.latency_s = latency_s
        self.wire_usage = wire_usage
        self._lock = threading.Lock()
        self._served: list[Served] = []
        self._faults: list[Fault] = []
        self._revoked: set[str] = set()
        self._limits: dict[str, tuple[int, float]] = {}
        self._windows: dict[str, deque[float]] = {}
        # reset() starts a new generation: answers still in flight from before it (a stalled
        # timeout, say) are neither recorded nor kept waiting.
        self._gen = 0
        self._stall = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeProvider:
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._stall.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"fake provider {self.name!r} is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The `base_url` to put in the config (OpenAI base URLs end in /v1)."""
        root = f"http://127.0.0.1:{self.port}"
        return root + "/v1" if self.api == "openai" else root

    # ------------------------------------------------------------------ programming

    def add_fault(self, kind: str, **kw: Any) -> Fault:
        """Add a fault (see `Fault`); faults are checked in the order they were added."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {FAULT_KINDS}")
        f = Fault(kind, **kw)
        with self._lock:
            self._faults.append(f)
        return f

    def outage(
        self,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        *,
        status: int | None = None,
    ) -> Fault:
        """Every request inside [start, end) fails with 503 (529 overloaded on Anthropic)."""
        default = 529 if self.api == "anthropic" else 503
        return self.add_fault("server_error", start=start, end=end, status=status or default)

    def revoke(self, key_label: str) -> None:
        """Requests with this key get 401 from now on (like a key deleted in the console)."""
        with self._lock:
            self._revoked.add(key_label)

    def unrevoke(self, key_label: str) -> None:
        with self._lock:
            self._revoked.discard(key_label)

    def rate_limit(self, key_label: str, requests: int, window_s: float) -> None:
        """At most `requests` requests per `window_s` seconds (fake clock) for this key."""
        with self._lock:
            self._limits[key_label] = (requests, window_s)
            self._windows[key_label] = deque()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._revoked.clear()
            self._limits.clear()
            self._windows.clear()

    def reset(self) -> None:
        """Forget faults, wire usage overrides and everything served (servers reused across
        test examples)."""
        self.clear_faults()
        self.wire_usage = None
        with self._lock:
            self._served.clear()
            self._gen += 1
            stall, self._stall = self._stall, threading.Event()
        stall.set()

    # ------------------------------------------------------------------ reading

    @property
    def served(self) -> list[Served]:
        """A copy of every request answered so far, in order."""
        with self._lock:
            return list(self._served)

    def served_ok(self) -> list[Served]:
        return [s for s in self.served if s.status == 200]

    def count(self, *, key: str | None = None, status: int | None = 200) -> int:
        return sum(
            1
            for s in self.served
            if (key is None or s.key == key) and (status is None or s.status == status)
        )

    # ------------------------------------------------------------------ serving

    def _record(self, entry: Served, gen: int) -> None:
        with self._lock:
            if gen == self._gen:
                self._served.append(entry)

    def _decide(
        self, label: str, model: str, now: dt.datetime, stream: bool = False
    ) -> tuple[Fault | None, float | None]:
        """(fault to fire, or None; Retry-After seconds if a per-key rate limit is hit)."""
        with self._lock:
            if label in self._revoked:
                return Fault("revoked"), None
            for f in self._faults:
                if f.kind in STREAM_FAULTS and not stream:
                    continue  # a mid-stream fault needs a stream
                if f.matches(label, model, now):
                    return f, None
            lim = self._limits.get(label)
            if lim:
                n, window = lim
                t = now.timestamp()
                q = self._windows[label]
                while q and q[0] <= t - window:
                    q.popleft()
                if len(q) >= n:
                    return Fault("rate_limit"), max(0.0, q[0] + window - t)
                q.append(t)
        return None, None

    def handle(
        self, path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Answer one request: (status, extra headers, JSON body)."""
        now = self.clock()
        gen, stall = self._gen, self._stall
        rid = ("chatcmpl-" if self.api == "openai" else "msg_") + uuid.uuid4().hex[:24]
        wire = _OPENAI if self.api == "openai" else _ANTHROPIC
        if not path.endswith(wire.path):
            return wire.error(404, "not_found_error", f"Unknown request URL: POST {path}.")
        secret = wire.secret(headers)
        label = self.keys.get(secret or "", "")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        model = str(body.get("model", "")) if isinstance(body, dict) else ""

        def fail(
            status: int,
            etype: str,
            message: str,
            code: str | None = None,
            extra: dict[str, str] | None = None,
        ):
            self._record(Served(now, self.name, label, model, Usage(), status, rid, etype), gen)
            st, hdrs, b = wire.error(status, etype, message, code=code)
            hdrs.update(extra or {})
            return st, hdrs, b

        if not secret or not label:
            return fail(*wire.unknown_key(secret))
        if self.api == "anthropic" and not headers.get("anthropic-version"):
            return fail(400, "invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return fail(
                400,
                "invalid_request_error",
                "Could not parse the JSON body of your request: 'messages' is required",
            )
        if self.models is not None and model not in self.models:
            return fail(*wire.unknown_model(model))

        streaming = body.get("stream") is True
        fault, limit_wait = self._decide(label, model, now, streaming)
        if fault is not None:
            kind = fault.kind
            if kind == "revoked":
                return fail(*wire.unknown_key(secret))
            if kind == "rate_limit":
                ra = limit_wait if limit_wait is not None else fault.retry_after
                extra = {} if ra is None else {"retry-after": _fmt_retry_after(ra)}
                return fail(*wire.rate_limited(model), extra=extra)
            if kind == "server_error":
                return fail(*wire.server_error(fault.status or 500))
            if kind == "overloaded":
                return fail(*wire.server_error(529 if self.api == "anthropic" else 503))
            if kind == "timeout":
                # Stall past the client's timeout; the client has gone by the time we answer.
                stall.wait(min(fault.delay_s, MAX_STALL_S))
                return fail(*wire.server_error(504))
            if kind == "context_length":
                return fail(
                    *wire.context_length(model, 10**7, (self.models or {}).get(model, 200_000))
                )
            if kind == "bad_request":
                return fail(
                    400,
                    "invalid_request_error",
                    "Invalid value for 'temperature'.",
                    code="invalid_value",
                )

        usage = self.usage_fn(body)
        prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        limit = (self.models or {}).get(model, 200_000)
        if prompt > limit:
            return fail(*wire.context_length(model, prompt, limit))
        if self.latency_s:
            time.sleep(self.latency_s)
        out, served_usage = wire.success(rid, model, body, usage, now)
        self._record(Served(now, self.name, label, model, served_usage, 200, rid), gen)
        raw_usage: Any = out["usage"]
        if self.wire_usage is not None:
            raw_usage = self.wire_usage(body)
        sfault = fault if fault is not None and fault.kind in STREAM_FAULTS else None
        if sfault is not None and sfault.kind == "stream_omit_usage":
            raw_usage = OMIT
        if streaming:
            events = wire.stream(out, raw_usage, body)
            return 200, {"content-type": "text/event-stream"}, _SSE(events, sfault, stall)
        if raw_usage is OMIT:
            del out["usage"]
        else:
            out["usage"] = raw_usage
        return 200, {}, out


OMIT = object()  # `wire_usage` result: leave the usage object out of the answer


@dataclass(slots=True)
class _SSE:
    """A streamed answer: its encoded server-sent events and the mid-stream fault."""

    events: list[bytes]
    fault: Fault | None
    stall: threading.Event


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (head + f"data: {payload}\n\n").encode()


def _pieces(text: str) -> list[str]:
    """Stream text in word-sized pieces (every piece keeps its leading space)."""
    out: list[str] = []
    for i, w in enumerate(text.split(" ")):
        out.append(w if i == 0 else " " + w)
    return [p for p in out if p]


def _fmt_retry_after(v: str | float) -> str:
    if isinstance(v, str):
        return v
    return str(max(0, int(v + 0.999)))  # delta-seconds are integers on the wire


# --------------------------------------------------------------------------- wire shapes


def _wants_tool(body: dict[str, Any]) -> str | None:
    """The tool to call when the request forces one (tool_choice required/any/named)."""
    tools = body.get("tools") or []
    if not tools:
        return None
    choice = body.get("tool_choice")
    first = tools[0].get("function", tools[0]).get("name", "tool")
    if choice == "required" or (isinstance(choice, dict) and choice.get("type") == "any"):
        return first
    if isinstance(choice, dict):
        return (choice.get("function") or {}).get("name") or choice.get("name") or None
    return None


class _OpenAIWire:
    path = "/chat/completions"

    @staticmethod
    def secret(headers: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") else None

    @staticmethod
    def error(status: int, etype: str, message: str, *, code: str | None = None):
        return (
            status,
            {},
            {"error": {"message": message, "type": etype, "param": None, "code": code}},
        )

    def unknown_key(self, secret: str | None):
        shown = (secret[:3] + "*" * 4 + secret[-4:]) if secret and len(secret) > 8 else "****"
        return (
            401,
            "invalid_request_error",
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_api_key",
        )

    @staticmethod
    def unknown_model(model: str):
        return (
            404,
            "invalid_request_error",
            f"The model `{model}` does not exist or you do not have access to it.",
            "model_not_found",
        )

    @staticmethod
    def rate_limited(model: str):
        return (
            429,
            "requests",
            f"Rate limit reached for {model} in organization org-fake on requests per min "
            "(RPM): Limit 500, Used 500, Requested 1. Please try again in 1s.",
            "rate_limit_exceeded",
        )

    @staticmethod
    def server_error(status: int):
        if status == 503:
            return (
                503,
                "server_error",
                "The engine is currently overloaded, please try again later.",
                None,
            )
        return (
            status,
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
            None,
        )

    @staticmethod
    def context_length(model: str, got: int, limit: int):
        return (
            400,
            "invalid_request_error",
            f"This model's maximum context length is {limit} tokens. However, your "
            f"messages resulted in {got} tokens. Please reduce the length of the messages.",
            "context_length_exceeded",
        )

    @staticmethod
    def success(rid: str, model: str, body: dict[str, Any], u: Usage, now: dt.datetime):
        # OpenAI has no cache-write bucket: cache writes bill as plain input there.
        served = Usage(
            u.input_tokens + u.cache_write_tokens,
            u.cache_read_tokens,
            0,
            u.output_tokens,
            min(u.reasoning_tokens, u.output_tokens),
        )
        prompt = served.input_tokens + served.cache_read_tokens
        tool = _wants_tool(body)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if tool else "This is a fake completion.",
            "refusal": None,
            "annotations": [],
        }
        if tool:
            message["tool_calls"] = [
                {
                    "id": "call_" + rid[-12:],
                    "type": "function",
                    "function": {"name": tool, "arguments": "{}"},
                }
            ]
        out = {
            "id": rid,
            "object": "chat.completion",
            "created": int(now.timestamp()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": served.output_tokens,
                "total_tokens": prompt + served.output_tokens,
                "prompt_tokens_details": {
                    "cached_tokens": served.cache_read_tokens,
                    "audio_tokens": 0,
                },
                "completion_tokens_details": {
                    "reasoning_tokens": served.reasoning_tokens,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }
        return out, served

    @staticmethod
    def stream(out: dict[str, Any], raw_usage: Any, body: dict[str, Any]) -> list[bytes]:
        """The chat.completion `out` as chat.completion.chunk events (exact OpenAI shape)."""
        base = {
            "id": out["id"],
            "object": "chat.completion.chunk",
            "created": out["created"],
            "model": out["model"],
            "service_tier": "default",
            "system_fingerprint": out["system_fingerprint"],
        }
        opts = body.get("stream_options")
        with_usage = isinstance(opts, dict) and opts.get("include_usage") is True

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            c: dict[str, Any] = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if with_usage:
                c["usage"] = None
            return _sse(None, c)

        msg = out["choices"][0]["message"]
        events = []
        if msg.get("tool_calls"):
            call = msg["tool_calls"][0]
            events.append(
                chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ],
                        "refusal": None,
                    }
                )
            )
            args = call["function"]["arguments"]
            for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                events.append(
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                )
        else:
            events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            for piece in _pieces(msg["content"] or ""):
                events.append(chunk({"content": piece}))
        events.append(chunk({}, out["choices"][0]["finish_reason"]))
        if with_usage and raw_usage is not OMIT:
            events.append(_sse(None, {**base, "choices": [], "usage": raw_usage}))
        events.append(b"data: [DONE]\n\n")
        return events


class _AnthropicWire:
    path = "/v1/messages"

    @staticmethod
    def secret(headers: Mapping[str, str]) -> str | None:
        return headers.get("x-api-key") or None

    @staticmethod
    def error(status: int, etype: str, message: str, *, code: str | None = None):
        return (
            status,
            {"request-id": "req_" + uuid.uuid4().hex[:24]},
            {
                "type": "error",
                "error": {"type": etype, "message": message},
                "request_id": "req_" + uuid.uuid4().hex[:24],
            },
        )

    @staticmethod
    def unknown_key(secret: str | None):
        return (401, "authentication_error", "invalid x-api-key", None)

    @staticmethod
    def unknown_model(model: str):
        return (404, "not_found_error", f"model: {model}", None)

    @staticmethod
    def rate_limited(model: str):
        return (
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests "
            "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
            None,
        )

    @staticmethod
    def server_error(status: int):
        if status == 529:
            return (529, "overloaded_error", "Overloaded", None)
        return (status, "api_error", "Internal server error", None)

    @staticmethod
    def context_length(model: str, got: int, limit: int):
        return (
            400,
            "invalid_request_error",
            f"prompt is too long: {got} tokens > {limit} maximum",
            None,
        )

    @staticmethod
    def success(rid: str, model: str, body: dict[str, Any], u: Usage, now: dt.datetime):
        # Messages does not report reasoning apart: it is inside output_tokens.
        served = Usage(
            u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens, 0
        )
        tool = _wants_tool(body)
        content: list[dict[str, Any]] = (
            [{"type": "tool_use", "id": "toolu_" + rid[-20:], "name": tool, "input": {}}]
            if tool
            else [{"type": "text", "text": "This is a fake completion."}]
        )
        out = {
            "id": rid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if tool else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": served.input_tokens,
                "cache_creation_input_tokens": served.cache_write_tokens,
                "cache_read_input_tokens": served.cache_read_tokens,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": served.cache_write_tokens,
                    "ephemeral_1h_input_tokens": 0,
                },
                "output_tokens": served.output_tokens,
                "service_tier": "standard",
            },
        }
        return out, served

    @staticmethod
    def stream(out: dict[str, Any], raw_usage: Any, body: dict[str, Any]) -> list[bytes]:
        """The Messages answer `out` as Messages stream events (exact Anthropic shape):
        input usage in message_start, cumulative output usage in message_delta."""
        start_usage: Any = OMIT
        delta_usage: Any = OMIT
        if isinstance(raw_usage, dict):
            start_usage = {**raw_usage, "output_tokens": 1}
            delta_usage = {"output_tokens": raw_usage.get("output_tokens")}
        elif raw_usage is not OMIT:
            start_usage = delta_usage = raw_usage
        message = {**out, "content": [], "stop_reason": None, "stop_sequence": None}
        if start_usage is OMIT:
            message.pop("usage", None)
        else:
            message["usage"] = start_usage
        events = [
            _sse("message_start", {"type": "message_start", "message": message}),
        ]
        for i, block in enumerate(out["content"]):
            if block["type"] == "tool_use":
                events.append(
                    _sse(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": i,
                            "content_block": {
                                "type": "tool_use",
                                "id": block["id"],
                                "name": block["name"],
                                "input": {},
                            },
                        },
                    )
                )
                args = json.dumps(block["input"])
                for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                    events.append(
                        _sse(
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": i,
                                "delta": {"type": "input_json_delta", "partial_json": piece},
                            },
                        )
                    )
            else:
                events.append(
                    _sse(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": i,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                )
                if i == 0:
                    events.append(_sse("ping", {"type": "ping"}))
                for piece in _pieces(block["text"]):
                    events.append(
                        _sse(
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": i,
                                "delta": {"type": "text_delta", "text": piece},
                            },
                        )
                    )
            events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        md: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": out["stop_reason"], "stop_sequence": None},
        }
        if delta_usage is not OMIT:
            md["usage"] = delta_usage
        events.append(_sse("message_delta", md))
        events.append(_sse("message_stop", {"type": "message_stop"}))
        return events


_OPENAI = _OpenAIWire()
_ANTHROPIC = _AnthropicWire()


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler; one write per response (no Nagle stalls)."""

    fake: FakeProvider
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # a test run must not print a line per request

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, extra, body = self.fake.handle(self.path, headers, raw)
        except Exception as e:  # a bug in the fake must show up as a 500, not a hang
            status, extra, body = (
                500,
                {},
                {"error": {"message": f"fake crashed: {e!r}", "type": "server_error"}},
            )
        if isinstance(body, _SSE):
            self._send_stream(status, extra, body)
        else:
            self._send(status, extra, body)

    def _send_stream(self, status: int, extra: Mapping[str, str], sse: _SSE) -> None:
        """Chunked transfer encoding, one chunk per event; a stream fault strikes after
        `fault.after` events: the connection is cut (no terminating chunk), the stream
        stalls, or an error event ends it."""
        head = [f"HTTP/1.1 {status} OK", "transfer-encoding: chunked", "cache-control: no-cache"]
        head.extend(f"{k}: {v}" for k, v in extra.items())
        fault = sse.fault
        strike = -1
        events = sse.events
        if fault is not None and fault.kind == "stream_no_end":
            events = events[:-1]  # OpenAI: data: [DONE]; Anthropic: message_stop
        elif fault is not None and fault.kind != "stream_omit_usage":
            strike = fault.after
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
            for i, ev in enumerate(events):
                if i == strike:
                    assert fault is not None
                    if fault.kind == "stream_drop":
                        self.close_connection = True
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if fault.kind == "stream_stall":
                        sse.stall.wait(min(fault.delay_s, MAX_STALL_S))
                    elif fault.kind == "stream_error":
                        ev = self.fake_error_event()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                        break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True  # the client went away mid-stream

    def fake_error_event(self) -> bytes:
        if self.fake.api == "anthropic":
            return _sse(
                "error",
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            )
        return _sse(
            None,
            {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
        )

    def do_GET(self) -> None:  # noqa: N802
        self._send(404, {}, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def _send(self, status: int, extra: Mapping[str, str], body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "content-type: application/json",
            f"content-length: {len(payload)}",
        ]
        head.extend(f"{k}: {v}" for k, v in extra.items())
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout): nothing to answer


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


# --------------------------------------------------------------------------- fleets


def demo_secrets(config: Any) -> dict[str, str]:
    """Made-up secrets for every BYOK `secret_env` and every shared-capacity provider, in
    the shape `Router(secrets=...)` and `start_fleet` take (env name -> secret)."""
    out = {k.secret_env: f"fake-{k.secret_env.lower()}" for k in config.byok_keys}
    for p in config.providers:
        env = shared_secret_env(p.id)
        out[env] = f"fake-{env.lower()}"
    return out


@dataclass
class Fleet:
    """One fake per config provider; `base_urls` goes straight into `Router(base_urls=...)`."""

    providers: dict[str, FakeProvider]
    secrets: dict[str, str]
    base_urls: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, provider_id: str) -> FakeProvider:
        return self.providers[provider_id]

    def served(self) -> list[Served]:
        return [s for fp in self.providers.values() for s in fp.served]

    def reset(self) -> None:
        for fp in self.providers.values():
            fp.reset()

    def close(self) -> None:
        for fp in self.providers.values():
            fp.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_fleet(
    config: Any,
    secrets: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    usage_fn: Callable[[dict[str, Any]], Usage] | None = None,
    latency_s: float = 0.0,
) -> Fleet:
    """Start a fake for every provider of a `LedgerConfig`. Keys are labelled with the BYOK
    key id (`shared` for the platform's pooled key); each fake knows its endpoints'
    upstream models and context lengths. `secrets` defaults to `demo_secrets(config)`."""
    secrets = dict(secrets if secrets is not None else demo_secrets(config))
    fakes: dict[str, FakeProvider] = {}
    try:
        for p in config.providers:
            keys = {
                secrets[k.secret_env]: k.id
                for k in config.byok_keys
                if k.provider == p.id and k.secret_env in secrets
            }
            shared = secrets.get(shared_secret_env(p.id))
            if shared:
                keys[shared] = SHARED_LABEL
            models = {
                ep.upstream_model: ep.context_length
                for m in config.models
                for ep in m.endpoints
                if ep.provider == p.id
            }
            fakes[p.id] = FakeProvider(
                p.api,
                name=p.id,
                keys=keys,
                clock=clock,
                usage_fn=usage_fn,
                models=models,
                latency_s=latency_s,
            ).start()
    except Exception:
        for fp in fakes.values():
            fp.close()
        raise
    return Fleet(fakes, secrets, {pid: fp.url for pid, fp in fakes.items()})


def main(argv: list[str] | None = None) -> int:
    """`python -m simulator.fake_providers CONFIG`: serve a fleet for a config in its own
    process (benchmarks, manual tries). Prints one JSON line {"base_urls", "secrets"} and
    serves until stdin closes."""
    import argparse
    import sys

    from routing_core.config import load_config

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("config")
    args = ap.parse_args(argv)
    with start_fleet(load_config(args.config)) as fleet:
        print(json.dumps({"base_urls": fleet.base_urls, "secrets": fleet.secrets}), flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
