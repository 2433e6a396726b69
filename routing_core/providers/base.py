"""What every provider adapter shares: the internal request form, the normalised result,
the error classification the router fails over on, and the sync/async send loop over an
injected httpx client (the transport is the test seam).

The internal request form is the OpenAI chat-completions body without `model` (messages
with `system`/`user`/`assistant`/`tool` roles, `max_tokens`, `tools` in OpenAI function
format, `temperature`, ...): callers already speak it, so the OpenAI adapter passes it
through and the Anthropic adapter translates it. Every result comes back as one
OpenAI-style `chat.completion` body plus disjoint `Usage` buckets (routing_core.schema).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from routing_core.schema import (
    ATTEMPT_AUTH,
    ATTEMPT_BAD_REQUEST,
    ATTEMPT_CONNECT,
    ATTEMPT_CONTEXT,
    ATTEMPT_ERROR,
    ATTEMPT_RATE_LIMITED,
    ATTEMPT_TIMEOUT,
    Usage,
)
from routing_core.usage import read_count

# Error kinds, spelled like the attempt statuses of the request log so the router can copy
# them straight into the record.
RATE_LIMITED = ATTEMPT_RATE_LIMITED  # 429: next key/route; Retry-After on the same route
AUTH = ATTEMPT_AUTH  # 401/403: the key cools down
BAD_REQUEST = ATTEMPT_BAD_REQUEST  # 400/404/413/422: no failover
CONTEXT_LENGTH = ATTEMPT_CONTEXT  # 400 prompt too long: next model
SERVER = ATTEMPT_ERROR  # 5xx, 529 overloaded, unparseable answer: next route
TIMEOUT = ATTEMPT_TIMEOUT
CONNECT = ATTEMPT_CONNECT

# Kinds after which another route may succeed (the router's "unavailable" family).
UNAVAILABLE_KINDS = frozenset({SERVER, TIMEOUT, CONNECT})


class ProviderError(Exception):
    """One failed provider call, classified. `error_type` is the provider's own error type
    or code (e.g. `rate_limit_exceeded`, `overloaded_error`) or the httpx exception name."""

    __slots__ = ("kind", "http_status", "error_type", "message", "retry_after_s")

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        http_status: int | None = None,
        error_type: str | None = None,
        retry_after_s: float | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.http_status = http_status
        self.error_type = error_type
        self.message = message
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return (
            f"ProviderError(kind={self.kind!r}, http_status={self.http_status!r}, "
            f"error_type={self.error_type!r}, message={self.message!r})"
        )


@dataclass(slots=True)
class ProviderResult:
    """A successful call: the caller-facing OpenAI-style body and the disjoint usage."""

    body: dict[str, Any]
    usage: Usage
    http_status: int = 200
    # routing_core.usage state of `usage`: ok | missing | invalid (then some counts are
    # INVALID); the router bounds it before pricing.
    usage_state: str = "ok"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def status_kind(status: int) -> str:
    """The failover class of an HTTP status when the body says nothing more specific."""
    if status == 429:
        return RATE_LIMITED
    if status in (401, 403):
        return AUTH
    if status >= 500:
        return SERVER  # includes Anthropic's 529 overloaded_error
    return BAD_REQUEST


def token_count(v: Any) -> int:
    """A count from a provider's usage object; anything but a valid count reads 0 (the
    router bounds usage through routing_core.usage, which flags such answers)."""
    n = read_count(v)
    return n if n is not None else 0


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


class Adapter:
    """One wire protocol. Subclasses implement `prepare` (internal request -> URL path,
    headers, JSON body), `parse_ok` (2xx body -> ProviderResult) and `refine_error` (the
    protocol's own error codes -> failover kind and error type; `classify` does the rest).
    `send`/`asend` do the I/O over an injected client."""

    api: str = ""

    def prepare(
        self, request: dict[str, Any], upstream_model: str, secret: str, base_url: str
    ) -> tuple[str, dict[str, str], dict[str, Any]]:
        raise NotImplementedError

    def parse_ok(self, data: dict[str, Any], gateway_model: str) -> ProviderResult:
        raise NotImplementedError

    def prepare_stream(
        self, request: dict[str, Any], upstream_model: str, secret: str, base_url: str
    ) -> tuple[str, dict[str, str], dict[str, Any]]:
        """`prepare` for a streamed answer (the wire's stream flags set)."""
        raise NotImplementedError

    def stream_parser(self) -> StreamParser:
        """A fresh parser of this wire's stream events."""
        raise NotImplementedError

    def open_stream(
        self,
        client: httpx.Client,
        request: dict[str, Any],
        *,
        upstream_model: str,
        secret: str,
        base_url: str,
        timeout: float,
    ) -> SyncUpstreamStream:
        """`aopen_stream` over a sync client."""
        url, headers, body = self.prepare_stream(request, upstream_model, secret, base_url)
        return open_stream_sync(
            client, url, headers, body, timeout, self.stream_parser(), self.classify
        )

    async def aopen_stream(
        self,
        client: httpx.AsyncClient,
        request: dict[str, Any],
        *,
        upstream_model: str,
        secret: str,
        base_url: str,
        timeout: float,
    ) -> UpstreamStream:
        """Start a streamed call; raises ProviderError when the answer is not a stream."""
        url, headers, body = self.prepare_stream(request, upstream_model, secret, base_url)
        return await open_stream(
            client, url, headers, body, timeout, self.stream_parser(), self.classify
        )

    def refine_error(
        self, kind: str, status: int, err: dict[str, Any], message: str
    ) -> tuple[str, str]:
        """(kind, error_type) of an error answer: `kind` is the status's class
        (`status_kind`), `err` the body's `error` object ({} when absent)."""
        raise NotImplementedError

    def classify(self, status: int, data: Any, headers: httpx.Headers) -> ProviderError:
        """An error status + parsed body -> ProviderError. Both wire formats nest
        `{type, message}` (OpenAI also `code`) under `error`; Retry-After counts only for
        a rate limit."""
        err = data.get("error") if isinstance(data, dict) else None
        if not isinstance(err, dict):
            err = {}
        message = str(err.get("message") or f"HTTP {status} from provider")
        kind, error_type = self.refine_error(status_kind(status), status, err, message)
        retry = parse_retry_after(headers.get("retry-after")) if kind == RATE_LIMITED else None
        return ProviderError(
            kind, message, http_status=status, error_type=error_type, retry_after_s=retry
        )

    # ------------------------------------------------------------------ I/O

    def _handle(self, resp: httpx.Response, gateway_model: str) -> ProviderResult:
        status = resp.status_code
        data = _json_or_none(resp.content)
        if 200 <= status < 300:
            if not isinstance(data, dict):
                raise ProviderError(
                    SERVER,
                    "provider returned a 2xx answer that is not a JSON object",
                    http_status=status,
                    error_type="invalid_response",
                )
            try:
                return self.parse_ok(data, gateway_model)
            except (KeyError, TypeError, ValueError, IndexError) as e:
                raise ProviderError(
                    SERVER,
                    f"provider answer missing fields: {e!r}",
                    http_status=status,
                    error_type="invalid_response",
                ) from None
        raise self.classify(status, data, resp.headers)

    def send(
        self,
        client: httpx.Client,
        request: dict[str, Any],
        *,
        upstream_model: str,
        gateway_model: str,
        secret: str,
        base_url: str,
        timeout: float,
    ) -> ProviderResult:
        """Call the provider synchronously; raises ProviderError on any failure."""
        url, headers, body = self.prepare(request, upstream_model, secret, base_url)
        with _TransportErrors(timeout):
            resp = client.post(_parsed(url), json=body, headers=headers, timeout=timeout)
        return self._handle(resp, gateway_model)

    async def asend(
        self,
        client: httpx.AsyncClient,
        request: dict[str, Any],
        *,
        upstream_model: str,
        gateway_model: str,
        secret: str,
        base_url: str,
        timeout: float,
    ) -> ProviderResult:
        """Call the provider from asyncio; raises ProviderError on any failure."""
        url, headers, body = self.prepare(request, upstream_model, secret, base_url)
        with _TransportErrors(timeout):
            resp = await client.post(_parsed(url), json=body, headers=headers, timeout=timeout)
        return self._handle(resp, gateway_model)


_URLS: dict[str, httpx.URL] = {}


def _parsed(url: str) -> httpx.URL:
    """The parsed form of a provider URL, kept: httpx parses a str URL on every request
    (~20 µs, a fifth of the router's overhead) but takes an `httpx.URL` as it is. A
    provider's endpoint URL never changes, so a handful of entries serve all traffic."""
    u = _URLS.get(url)
    if u is None:
        u = httpx.URL(url)  # raises httpx.InvalidURL inside _TransportErrors
        if len(_URLS) > 1024:
            _URLS.clear()
        _URLS[url] = u
    return u


class _TransportErrors:
    """Turns the httpx exception of a failed call (sync or async) into its ProviderError.
    A class rather than @contextmanager: this wraps every provider call, and a plain
    __enter__/__exit__ costs a fraction of a generator-based context manager."""

    __slots__ = ("timeout",)

    def __init__(self, timeout: float):
        self.timeout = timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, etype: type[BaseException] | None, e: BaseException | None, tb: Any) -> bool:
        if isinstance(e, httpx.TimeoutException):
            raise ProviderError(
                TIMEOUT, f"no answer within {self.timeout:.3g}s", error_type=type(e).__name__
            ) from None
        if isinstance(e, (httpx.TransportError, httpx.InvalidURL)):
            raise ProviderError(
                CONNECT, f"could not reach provider: {e}", error_type=type(e).__name__
            ) from None
        if isinstance(e, httpx.HTTPError):  # decoding errors and the like: a broken answer
            raise ProviderError(
                SERVER, f"unreadable provider answer: {e}", error_type=type(e).__name__
            ) from None
        return False  # no exception, or not a transport problem: let it through


# --------------------------------------------------------------------------- streaming

MAX_SSE_LINE = 1 << 20  # one server-sent-events line above 1 MiB is a broken upstream


class SSEDecoder:
    """Incremental `text/event-stream` decoder: `feed(bytes)` -> complete (event, data)
    pairs, in order (`event` None when the event had no `event:` field). Comments and
    fields other than `event`/`data` are ignored; multi-line data is joined by newlines."""

    __slots__ = ("_buf", "_event", "_data")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:
        lines = (self._buf + chunk).split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_SSE_LINE:
            raise ValueError(f"a server-sent-events line is over {MAX_SSE_LINE} bytes")
        out: list[tuple[str | None, str]] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    out.append((self._event, "\n".join(self._data)))
                self._event, self._data = None, []
                continue
            if line[:1] == b":":
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value.decode("utf-8", "replace"))
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
        return out


class StreamParser:
    """One wire format's stream events -> neutral events (routing_core.streaming), with
    the usage and the size of the answer seen so far. `done` is set by the wire's end
    marker, `finished` by the answer's finish reason; `usage()` is (Usage, state) with state ok | missing | invalid | partial
    (partial: input reported, final output not yet)."""

    done: bool = False
    finished: bool = False  # a finish reason arrived (the answer is complete)
    out_chars: int = 0

    def feed(self, event: str | None, data: str) -> list[Any]:
        raise NotImplementedError

    def usage(self) -> tuple[Usage, str]:
        raise NotImplementedError


def stream_error(message: str, error_type: str = "invalid_stream") -> ProviderError:
    return ProviderError(SERVER, message, error_type=error_type)


class UpstreamStream:
    """An open streamed answer: the httpx response, its SSE decoder and the wire parser.
    `next_event(timeout)` returns the next neutral event, or None once the upstream sent
    its end marker; any failure (connection cut, stall past `timeout`, an error event,
    unparseable data, the body ending before the end marker) raises ProviderError."""

    __slots__ = ("resp", "parser", "read_timeout", "_decoder", "_raw", "_pending", "closed")

    def __init__(self, resp: httpx.Response, parser: StreamParser, read_timeout: float):
        self.resp = resp
        self.parser = parser
        # httpx already bounds every read by the timeout the call was opened with; an
        # asyncio timeout (a timer per chunk) is added only when the caller's time left is
        # shorter than that.
        self.read_timeout = read_timeout
        self._decoder = SSEDecoder()
        # Without a content encoding httpx's decoder and re-chunker only pass the bytes
        # along: two async generators less per streamed chunk.
        identity = resp.headers.get("content-encoding", "identity") == "identity"
        self._raw = resp.aiter_raw() if identity else resp.aiter_bytes()
        self._pending: list[Any] = []
        self.closed = False

    async def next_event(self, timeout: float) -> Any:
        pending = self._pending
        while not pending:
            if self.parser.done:
                await self._drain(timeout)
                return None
            if timeout <= 0:
                raise ProviderError(TIMEOUT, "the stream passed its deadline", error_type="stall")
            try:
                if timeout >= self.read_timeout:
                    chunk = await self._raw.__anext__()
                else:
                    async with asyncio.timeout(timeout):
                        chunk = await self._raw.__anext__()
            except StopAsyncIteration:
                if self.parser.done or self.parser.finished:
                    # A body that ends cleanly after the answer's finish reason but without
                    # the end marker (some OpenAI-compatible servers omit `[DONE]`) is done.
                    self.parser.done = True
                    return None
                raise stream_error("the stream ended before its end marker") from None
            except (TimeoutError, httpx.TimeoutException):
                raise ProviderError(
                    TIMEOUT,
                    f"no stream data within {min(timeout, self.read_timeout):.3g}s",
                    error_type="stall",
                ) from None
            except httpx.HTTPError as e:
                raise ProviderError(
                    CONNECT, f"the stream broke off: {e}", error_type=type(e).__name__
                ) from None
            self._feed(chunk)
        return pending.pop(0)

    def _feed(self, chunk: bytes) -> None:
        try:
            for event, data in self._decoder.feed(chunk):
                self._pending.extend(self.parser.feed(event, data))
        except ProviderError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
            raise stream_error(f"unreadable stream data: {e}") from None

    async def _drain(self, timeout: float) -> None:
        """Read what follows the end marker (normally just the chunked terminator) so the
        connection goes back to the pool instead of being closed: a new TCP connection per
        stream would cost more than everything else the router does. Bounded in time and
        size; anything unexpected just closes the connection."""
        if self.closed:
            return
        left = 1 << 16
        try:
            async with asyncio.timeout(max(0.001, min(timeout, 1.0))):
                async for chunk in self._raw:
                    left -= len(chunk)
                    if left < 0:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass

    def push_back(self, event: Any) -> None:
        """Put an event read ahead back in front (the router reads the first one early)."""
        self._pending.insert(0, event)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                await self._raw.aclose()  # type: ignore[attr-defined]
            finally:
                await self.resp.aclose()


def _require_event_stream(resp: httpx.Response) -> None:
    """A 2xx answer to a stream request must be `text/event-stream`; anything else is an
    invalid response (both the sync and the async opener check it here)."""
    ctype = resp.headers.get("content-type", "")
    if "text/event-stream" not in ctype:
        raise ProviderError(
            SERVER,
            f"provider answered a stream request with {ctype or 'no content type'}",
            http_status=resp.status_code,
            error_type="invalid_response",
        )


async def open_stream(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    timeout: float,
    parser: StreamParser,
    classify: Any,
) -> UpstreamStream:
    """POST a streaming request; a non-2xx answer (read whole, at most 1 MiB) raises the
    ProviderError `classify(status, data, headers)` gives; a 2xx answer that is not
    `text/event-stream` raises an invalid-response error."""
    with _TransportErrors(timeout):
        req = client.build_request(
            "POST", _parsed(url), json=body, headers=headers, timeout=timeout
        )
        resp = await client.send(req, stream=True)
    try:
        status = resp.status_code
        if not 200 <= status < 300:
            with _TransportErrors(timeout):
                raw = b""
                async for part in resp.aiter_bytes():
                    raw += part
                    if len(raw) > MAX_SSE_LINE:
                        break
            raise classify(status, _json_or_none(raw), resp.headers)
        _require_event_stream(resp)
    except BaseException:
        await resp.aclose()
        raise
    return UpstreamStream(resp, parser, timeout)


class SyncUpstreamStream(UpstreamStream):
    """`UpstreamStream` over a sync `httpx.Client`: every read is bounded by the timeout
    the call was opened with (httpx's read timeout), and the deadline is checked between
    reads."""

    __slots__ = ()

    def __init__(self, resp: httpx.Response, parser: StreamParser, read_timeout: float):
        super().__init__(resp, parser, read_timeout)
        self._raw = resp.iter_bytes()

    def next_event_sync(self, timeout: float) -> Any:
        pending = self._pending
        while not pending:
            if self.parser.done:
                self._drain_sync()
                return None
            if timeout <= 0:
                raise ProviderError(TIMEOUT, "the stream passed its deadline", error_type="stall")
            try:
                chunk = next(self._raw)  # type: ignore[call-overload]
            except StopIteration:
                if self.parser.done or self.parser.finished:
                    self.parser.done = True
                    return None
                raise stream_error("the stream ended before its end marker") from None
            except httpx.TimeoutException:
                raise ProviderError(
                    TIMEOUT, f"no stream data within {self.read_timeout:.3g}s", error_type="stall"
                ) from None
            except httpx.HTTPError as e:
                raise ProviderError(
                    CONNECT, f"the stream broke off: {e}", error_type=type(e).__name__
                ) from None
            self._feed(chunk)
        return pending.pop(0)

    def _drain_sync(self) -> None:
        """Read what follows the end marker so the connection returns to the pool."""
        if self.closed:
            return
        left = 1 << 16
        try:
            for chunk in self._raw:  # type: ignore[attr-defined]
                left -= len(chunk)
                if left < 0:
                    break
        except httpx.HTTPError:
            pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.resp.close()


def open_stream_sync(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    timeout: float,
    parser: StreamParser,
    classify: Any,
) -> SyncUpstreamStream:
    """`open_stream` over a sync client."""
    with _TransportErrors(timeout):
        req = client.build_request(
            "POST", _parsed(url), json=body, headers=headers, timeout=timeout
        )
        resp = client.send(req, stream=True)
    try:
        status = resp.status_code
        if not 200 <= status < 300:
            with _TransportErrors(timeout):
                raw = b""
                for part in resp.iter_bytes():
                    raw += part
                    if len(raw) > MAX_SSE_LINE:
                        break
            raise classify(status, _json_or_none(raw), resp.headers)
        _require_event_stream(resp)
    except BaseException:
        resp.close()
        raise
    return SyncUpstreamStream(resp, parser, timeout)
