"""A lean HTTP/1.1 transport for the gateway's pooled `httpx.AsyncClient` (httpx's
transport seam: the router and its adapters still talk to an `httpx.AsyncClient`).

Why: on the 2-core build machine a whole provider call through httpx's default async
transport (httpcore over anyio) cost about 1 ms of CPU, several times what uvicorn and
Starlette spend on the whole inbound request; with this transport the gateway's CPU per
request fell from 1.81 ms to 0.93–1.27 ms in bench/bench_gateway.py. The rest of a call was
httpx's client layer, which the router's adapters use: `UpstreamClient.post` writes a plain
JSON POST itself (the same bytes httpx would send) and hands back an `httpx.Response`,
~150 → ~105 µs of CPU per upstream call. This transport keeps the same contract
(an `httpx.Response` whose body streams, httpx's exception types, the request's
connect/read/pool timeouts) over asyncio protocols with the llhttp parser (`httptools`,
already uvicorn's parser): keep-alive pools per origin, one write per request, and the
body handed over as it arrives (server-sent events included).

Errors map to what the adapters classify: `httpx.ConnectError` / `ConnectTimeout`,
`ReadTimeout`, `PoolTimeout`, `RemoteProtocolError` (the peer closed before a complete
answer), `ReadError`. A pooled connection that turns out closed before any answer byte is
retried once on a fresh connection (the request never reached the server). TLS uses the
same CA bundle as httpx (certifi). With HTTP(S)_PROXY set, `make_client` falls back to
httpx's own transport, which knows proxies.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from json import dumps as _json_dumps
from typing import Any

import httptools
import httpx

_HTTP11 = b"HTTP/1.1"


def _field(name: bytes, value: bytes) -> tuple[bytes, ...]:
    """One header line's parts. A CR, LF or NUL in a name or value (e.g. a secret with a
    newline in its environment variable) would end the line early and let the rest of the
    value be read as another header: refused as httpx's own transport (h11) refuses it."""
    for part in (name, value):
        if b"\r" in part or b"\n" in part or b"\0" in part:
            raise httpx.LocalProtocolError("Illegal header name or value (CR, LF or NUL)")
    return (name, b": ", value, b"\r\n")


class _Conn(asyncio.Protocol):
    """One keep-alive connection and the answer being read on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future[None] | None = None
        self.loop = asyncio.get_running_loop()
        self.deadline: float | None = None  # of the current wait (loop time)
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.begin()

    def begin(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = True
        self.chunks: deque[bytes] = deque()
        self.got_bytes = False
        self.error: str | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self.error = f"invalid HTTP answer: {e}"
            self.close()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._wake()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(bytes(body))

    def on_message_complete(self) -> None:
        self.complete = True

    # helpers
    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self, timeout: float | None) -> None:
        """Until more data, the end of the answer or the end of the connection; raises
        TimeoutError after `timeout` seconds. This runs once per streamed chunk, so there
        is one timer per connection rather than one per wait: armed for a wait's
        deadline, and when it fires while a later wait moved the deadline out, armed
        again for that (a wait with a nearer deadline re-arms it at once)."""
        loop = self.loop
        w = self.waiter = loop.create_future()
        if timeout is None:
            self.deadline = None
        else:
            self.deadline = deadline = loop.time() + timeout
            if self.timer is None or deadline < self.timer_at:
                self._arm(deadline)
        try:
            await w
        finally:
            self.waiter = None

    def _arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self.timer = None
        w, deadline = self.waiter, self.deadline
        if w is None or w.done() or deadline is None:
            return  # nobody waits with a deadline: the next wait arms a timer
        if self.loop.time() >= deadline:
            w.set_exception(TimeoutError())
        else:
            self._arm(deadline)

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()


class _Body(httpx.AsyncByteStream):
    def __init__(self, pool: FastTransport, key: tuple, conn: _Conn, read_t: float | None):
        self.pool = pool
        self.key = key
        self.conn = conn
        self.read_t = read_t
        self.done = False

    async def __aiter__(self):  # type: ignore[override]
        conn = self.conn
        while True:
            while conn.chunks:
                yield conn.chunks.popleft()
            if conn.complete:
                return
            if conn.error:
                raise httpx.RemoteProtocolError(conn.error)
            if conn.closed:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            try:
                await conn.wait(self.read_t)
            except TimeoutError:
                conn.close()
                raise httpx.ReadTimeout(f"no data within {self.read_t}s") from None

    async def aclose(self) -> None:
        if self.done:
            return
        self.done = True
        self.pool.release(self.key, self.conn)


class FastTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 pools per origin (see the module docstring)."""

    def __init__(
        self,
        *,
        max_connections: int = 1024,
        max_idle_per_origin: int = 256,
        ssl_context: ssl.SSLContext | None = None,
    ):
        """`ssl_context`: how to verify HTTPS upstreams (default: certifi's CA bundle)."""
        self.max_idle = max_idle_per_origin
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple, deque[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = ssl_context
        self._all: set[_Conn] = set()

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            try:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - httpx depends on certifi
                self._ssl = ssl.create_default_context()
        return self._ssl

    async def _connect(self, key: tuple, timeout: float | None) -> _Conn:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls = scheme == "https"
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    _Conn,
                    host,
                    port,
                    ssl=self._ssl_context() if tls else None,
                    server_hostname=host if tls else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"no connection to {host}:{port} within {timeout}s"
            ) from None
        except (OSError, ssl.SSLError) as e:
            raise httpx.ConnectError(f"could not connect to {host}:{port}: {e}") from None
        self._all.add(conn)
        return conn

    def release(self, key: tuple, conn: _Conn) -> None:
        """The answer was read (or abandoned): keep the connection for the next request
        when it is reusable, else close it; free the connection slot either way."""
        reusable = conn.complete and conn.keep_alive and not conn.closed and not conn.chunks
        idle = self._idle.setdefault(key, deque())
        if reusable and len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()
            self._all.discard(conn)
        self._slots.release()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        t = request.extensions.get("timeout") or {}
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        head = [request.method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            head += _field(name, value)
        head.append(b"\r\n")
        read_t = t.get("read")
        conn = await self.exchange(
            key, b"".join(head) + body, t.get("connect"), read_t, t.get("pool")
        )
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=_Body(self, key, conn, read_t),
            extensions={"http_version": _HTTP11, "reason_phrase": b""},
        )

    async def exchange(
        self,
        key: tuple,
        data: bytes,
        connect_t: float | None,
        read_t: float | None,
        pool_t: float | None,
    ) -> _Conn:
        """Send one request (`data`, head and body) to origin `key` and wait for the
        answer's status and headers; the returned connection holds a pool slot until
        `release(key, conn)` (what `_Body.aclose` does)."""
        slots = self._slots
        if slots.locked():  # wait for a slot, bounded; a free one costs no timer
            try:
                async with asyncio.timeout(pool_t):
                    await slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free upstream connection") from None
        else:
            await slots.acquire()
        try:
            for fresh in (False, True):
                conn = None
                idle = self._idle.get(key)
                while not fresh and idle:
                    c = idle.pop()
                    if not c.closed:
                        conn = c
                        break
                    self._all.discard(c)
                reused = conn is not None
                if conn is None:
                    conn = await self._connect(key, connect_t)
                conn.begin()
                assert conn.transport is not None
                conn.transport.write(data)
                while not conn.headers_done:
                    if conn.error or conn.closed:
                        break
                    try:
                        await conn.wait(read_t)
                    except TimeoutError:
                        conn.close()
                        self._all.discard(conn)
                        raise httpx.ReadTimeout(f"no answer within {read_t}s") from None
                if conn.headers_done:
                    return conn
                conn.close()
                self._all.discard(conn)
                if reused and not conn.got_bytes and not fresh:
                    continue  # a stale keep-alive connection: the request never arrived
                raise httpx.RemoteProtocolError(
                    conn.error or "server disconnected without sending a response"
                )
        except BaseException:
            slots.release()
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def read_whole(self, key: tuple, conn: _Conn, read_t: float | None) -> bytes:
        """The rest of the answer on `conn` (after `exchange`), then the connection back
        to the pool; httpx's exceptions as `_Body` raises them."""
        body = _Body(self, key, conn, read_t)
        try:
            parts = [part async for part in body]
        finally:
            await body.aclose()
        return b"".join(parts)

    async def aclose(self) -> None:
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing and is always empty."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None

    def __bool__(self) -> bool:
        return False


_NO_COOKIES = _NoCookies()


class UpstreamClient(httpx.AsyncClient):
    """`httpx.AsyncClient` without a cookie jar. One client is shared by every tenant's
    requests, so a `Set-Cookie` from a provider must not ride along on the next caller's
    request; and httpx builds urllib request/response wrappers to run its cookie jar on
    every answer, about 60 µs of the gateway's CPU per request on the build machine."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **kw: Any):
        """httpx.AsyncClient's keywords. Over `FastTransport` (which knows no proxies:
        `make_client` picks httpx's transport when one is configured) the environment's
        proxy settings are not mounted, and `send` may go straight to the transport."""
        fast = isinstance(transport, FastTransport) and "mounts" not in kw
        if fast:
            kw["trust_env"] = False
        super().__init__(transport=transport, **kw)
        self._fast = transport if fast else None

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise ValueError("the gateway's upstream client keeps no cookies")

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        """httpx's `send`, straight to `FastTransport` when there is nothing for its
        client layer to do (no auth, no redirects to follow, no event hooks; cookies are
        never kept): its auth and redirect generators and response wrapper cost ~25 µs of
        the gateway's CPU per request on the build machine. Otherwise httpx's own."""
        transport = self._fast
        if (
            transport is not None
            and auth is httpx.USE_CLIENT_DEFAULT
            and self.auth is None
            and follow_redirects is httpx.USE_CLIENT_DEFAULT
            and not self.follow_redirects
            and not self.event_hooks["request"]
            and not self.event_hooks["response"]
        ):
            response = await transport.handle_async_request(request)
            response.request = request
            if not stream:
                try:
                    await response.aread()
                except BaseException:
                    await response.aclose()
                    raise
            return response
        return await super().send(
            request, stream=stream, auth=auth, follow_redirects=follow_redirects
        )

    async def post(  # type: ignore[override]
        self,
        url: httpx.URL | str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        **kw: Any,
    ) -> httpx.Response:
        """httpx's `post`; a JSON POST to an absolute `httpx.URL` with nothing for httpx's
        client layer to do goes straight to `FastTransport` as one request it writes
        itself. Why: building the `httpx.Request` (header normalisation, the body stream)
        and reading the answer through httpx's decoder chain cost ~45 µs of the gateway's
        CPU per request on the build machine, a third of the upstream call. The wire is
        httpx's: the same headers in the same order, the body `json.dumps` as httpx
        encodes it, and the answer an `httpx.Response` (its `request` built on first use)."""
        transport = self._fast
        if (
            transport is None
            or kw
            or json is None
            or url.__class__ is not httpx.URL
            or not self._plain()
            or url.scheme not in ("http", "https")
        ):
            return await super().post(url, json=json, headers=headers, timeout=timeout, **kw)
        t = self.timeout if timeout is httpx.USE_CLIENT_DEFAULT else httpx.Timeout(timeout)
        body = _json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        data = body.encode()
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        conn = await transport.exchange(
            key, self._head(url, headers or {}, len(data)) + data, t.connect, t.read, t.pool
        )
        content = await transport.read_whole(key, conn, t.read)
        response = _Answer(
            conn.status,
            headers=conn.headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": _HTTP11, "reason_phrase": b""},
        )
        response._lazy = (self, url, headers, json, timeout)
        if response.headers.get("content-encoding", "identity") == "identity":
            response._content = content  # read already; nothing to decode
        else:
            await response.aread()
        return response

    def _plain(self) -> bool:
        return (
            self.auth is None
            and not self.follow_redirects
            and not self.event_hooks["request"]
            and not self.event_hooks["response"]
            and not self.params
            and not self.base_url.raw_host
        )

    def _head(self, url: httpx.URL, headers: dict[str, str], n: int) -> bytes:
        """The request line and headers httpx would send for a JSON POST: Host, the
        client's headers (unless the request sets them), the request's, then
        Content-Length and Content-Type."""
        own = {k.lower(): v for k, v in headers.items()}
        parts = [b"POST ", url.raw_path, b" HTTP/1.1\r\nHost: ", url.netloc, b"\r\n"]
        for name, value in self.headers.raw:
            if name.lower().decode("ascii") not in own:
                parts += _field(name, value)
        for name, value in headers.items():
            parts += _field(name.encode("ascii"), value.encode("ascii"))
        parts.append(b"Content-Length: %d\r\n" % n)
        if "content-type" not in own:
            parts.append(b"Content-Type: application/json\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)


class _Answer(httpx.Response):
    """The `httpx.Response` of `UpstreamClient.post`'s short cut: its `request` (which
    nothing on the gateway's path reads) is built by httpx only when asked for."""

    _lazy: tuple

    @property  # type: ignore[override]
    def request(self) -> httpx.Request:
        if self._request is None:
            client, url, headers, json, timeout = self._lazy
            self._request = client.build_request(
                "POST", url, json=json, headers=headers, timeout=timeout
            )
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


def make_client(max_connections: int) -> httpx.AsyncClient:
    """The gateway's pooled upstream client (no cookie jar): httpx's API over
    `FastTransport`, or httpx's own transport when a proxy is configured in the
    environment."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    timeout = httpx.Timeout(60.0)
    proxied = any(
        os.environ.get(v)
        for v in (
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        )
    )
    if proxied:
        return UpstreamClient(limits=limits, timeout=timeout)
    transport: Any = FastTransport(max_connections=max_connections)
    return UpstreamClient(transport=transport, timeout=timeout)


__all__ = ["FastTransport", "UpstreamClient", "make_client"]
