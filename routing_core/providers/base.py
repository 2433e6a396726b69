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
