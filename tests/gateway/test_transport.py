"""The gateway's upstream transport (gateway/transport.py) against real loopback servers
that misbehave on purpose: keep-alive reuse, a stale pooled connection, a server that never
answers, a refused port, a body cut short, garbage instead of HTTP, and a streamed body
that must arrive piece by piece."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from gateway.transport import FastTransport

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    return head + (await reader.readexactly(n) if n else b"")


def each_request(answer: Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]) -> Handler:
    """A server handler that reads the requests of a keep-alive connection one after
    another and lets `answer(request, writer)` reply to each, until the client leaves."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                req = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            await answer(req, writer)

    return handler


def run(handler: Handler, body: Callable[[httpx.AsyncClient, str], Awaitable[None]]) -> None:
    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = FastTransport(max_connections=8)
        async with httpx.AsyncClient(transport=transport, timeout=2.0) as client:
            client.transport_ref = transport  # type: ignore[attr-defined]
            await body(client, f"http://127.0.0.1:{port}")
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_keep_alive_reuses_one_connection():
    conns = []

    async def handler(reader, writer):
        conns.append(writer)
        while True:
            try:
                req = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            assert b"POST /v1/x?q=1 HTTP/1.1" in req and b'{"a":1}' in req
            writer.write(OK)

    async def body(client, url):
        for _ in range(3):
            r = await client.post(url + "/v1/x?q=1", json={"a": 1})
            assert r.status_code == 200 and r.json() == {"ok": True}

    run(handler, body)
    assert len(conns) == 1


def test_a_stale_pooled_connection_is_retried_on_a_fresh_one():
    seen = []

    async def handler(reader, writer):
        await read_request(reader)
        seen.append(1)
        writer.write(OK)  # keep-alive by default ... then closes anyway
        await writer.drain()
        writer.close()

    async def body(client, url):
        assert (await client.post(url, json={})).status_code == 200
        await asyncio.sleep(0.05)  # the close reaches the pool
        assert (await client.post(url, json={})).status_code == 200

    run(handler, body)
    assert len(seen) == 2


def test_no_answer_is_a_read_timeout():
    async def handler(reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)

    async def body(client, url):
        t = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url, json={}, timeout=0.3)
        assert time.monotonic() - t < 1.5

    run(handler, body)


def test_one_timer_per_connection_still_times_every_wait():
    """The connection keeps one read timer across waits: a stall after a long-deadline
    answer on the same keep-alive connection still times out at its own, shorter read
    timeout, and a stream's stall mid-body too."""

    async def answer(req, writer):
        if b"/stall" in req:
            await asyncio.sleep(5)
        elif b"/drip" in req:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for _ in range(3):
                writer.write(b"1\r\na\r\n")
                await asyncio.sleep(0.05)
            await asyncio.sleep(5)
        else:
            writer.write(OK)

    async def body(client, url):
        r = await client.post(url + "/ok", json={}, timeout=30.0)
        assert r.status_code == 200
        t = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url + "/stall", json={}, timeout=0.3)
        assert time.monotonic() - t < 1.5
        req = client.build_request("POST", url + "/drip", json={}, timeout=0.3)
        r = await client.send(req, stream=True)
        got = b""
        t = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            async for part in r.aiter_raw():
                got += part
        assert got == b"aaa" and time.monotonic() - t < 1.5
        await r.aclose()

    run(each_request(answer), body)


def test_refused_port_is_a_connect_error():
    async def main():
        async with httpx.AsyncClient(transport=FastTransport()) as c:
            with pytest.raises(httpx.ConnectError):
                await c.post("http://127.0.0.1:9/x", json={})

    asyncio.run(main())


@pytest.mark.parametrize(
    "answer",
    [
        b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"cut',  # body cut short
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",  # no last chunk
        b"",  # closed without an answer
        b"garbage that is not http\r\n\r\n",
    ],
)
def test_broken_answers_are_protocol_errors(answer):
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async def body(client, url):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url, json={})
        assert client.transport_ref._slots._value == 8  # the slot came back

    run(handler, body)


def test_a_streamed_body_arrives_piece_by_piece():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for i in range(3):
            data = f"data: {i}\n\n".encode()
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.3)
        writer.write(b"0\r\n\r\n")

    async def body(client, url):
        t = time.monotonic()
        got = []
        async with client.stream("POST", url, json={}) as r:
            async for part in r.aiter_bytes():
                got.append((round(time.monotonic() - t, 1), part))
        assert b"".join(p for _, p in got) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert got[0][0] < 0.2  # the first event did not wait for the rest

    run(handler, body)


def test_https_upstreams_are_verified(tmp_path):
    import ssl
    import subprocess

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)

    async def handler(reader, writer):
        try:
            await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            return
        writer.write(OK)
        await writer.drain()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
        async with httpx.AsyncClient(transport=FastTransport()) as c:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await c.post(url, json={})  # a self-signed certificate is refused
        trusting = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(transport=FastTransport(ssl_context=trusting)) as c:
            r = await c.post(url, json={})
            assert r.status_code == 200 and r.json() == {"ok": True}
        server.close()

    asyncio.run(main())


@pytest.mark.parametrize("fast", [True, False], ids=["fast_transport", "httpx_transport"])
def test_a_providers_cookie_never_rides_on_the_next_request(fast):
    """One upstream client serves every tenant: a Set-Cookie from a provider must not be
    sent with the next caller's request (with either transport make_client may choose)."""
    from gateway.transport import UpstreamClient

    seen: list[bytes] = []
    answer = (
        b"HTTP/1.1 200 OK\r\nset-cookie: session=tenant-a-secret; Path=/\r\n"
        b'content-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
    )

    async def handler(reader, writer):
        while True:
            try:
                seen.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                return
            writer.write(answer)

    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        kw = {"transport": FastTransport(max_connections=4)} if fast else {}
        async with UpstreamClient(timeout=2.0, **kw) as client:
            for _ in range(2):
                r = await client.post(f"http://127.0.0.1:{port}/v1/x", json={"a": 1})
                assert r.json() == {"ok": True}
            assert not client.cookies
            with pytest.raises(ValueError, match="no cookies"):
                client.cookies = {"a": "b"}
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert len(seen) == 2
    assert all(b"cookie" not in req.lower().replace(b"set-cookie", b"") for req in seen)
    assert all(b"tenant-a-secret" not in req for req in seen)


def test_upstream_client_short_cut_keeps_httpx_semantics():
    """UpstreamClient.send goes straight to FastTransport only when httpx's client layer
    has nothing to do: bodies are read (or streamed) the same, a 3xx is returned as it is,
    and a request with auth still goes through httpx (its Authorization header arrives)."""
    from gateway.transport import UpstreamClient

    seen: list[bytes] = []

    async def answer(req, writer):
        seen.append(req)
        if b"/redirect" in req:
            writer.write(
                b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /elsewhere\r\n"
                b"content-length: 0\r\n\r\n"
            )
        else:
            writer.write(OK)

    async def main() -> None:
        server = await asyncio.start_server(each_request(answer), "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with UpstreamClient(transport=FastTransport(max_connections=4), timeout=2.0) as c:
            r = await c.post(url + "/v1/x", json={"a": 1})
            assert r.json() == {"ok": True} and r.request.url.path == "/v1/x"
            r = await c.post(url + "/redirect", json={})
            assert r.status_code == 307 and len(seen) == 2  # not followed
            req = c.build_request("POST", url + "/v1/s", json={})
            r = await c.send(req, stream=True)
            assert b"".join([p async for p in r.aiter_bytes()]) == b'{"ok":true}'
            await r.aclose()
            r = await c.post(url + "/v1/auth", json={}, auth=("user", "pw"))
            assert r.json() == {"ok": True}
            r = await c.post(url + "/redirect", json={}, follow_redirects=True)
            assert r.status_code == 200 and r.url.path == "/elsewhere"
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert b"Authorization: Basic dXNlcjpwdw==" in seen[3]  # httpx added the auth header
    assert seen[-1].startswith(b"POST /elsewhere")


def test_upstream_client_post_short_cut_sends_what_httpx_sends():
    """UpstreamClient.post writes a JSON POST itself: the bytes on the wire are the ones
    httpx's own request building gives (same headers, order and JSON encoding, non-ASCII
    text included), a gzip answer is decoded, an error status is read whole, and the
    answer's `request` is there when asked for."""
    import gzip

    from gateway.transport import UpstreamClient

    seen: list[bytes] = []
    packed = gzip.compress(b'{"zipped":true}')

    async def answer(req, writer):
        seen.append(req)
        if b"/gz" in req:
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(packed), packed)
            )
        elif b"/bad" in req:
            writer.write(
                b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\n"
                b'content-length: 12\r\n\r\n{"error":{}}'
            )
        else:
            writer.write(OK)

    body = {"messages": [{"role": "user", "content": "h\u00e9llo \u2603"}], "max_tokens": 5}
    headers = {"authorization": "Bearer sk-x", "anthropic-version": "2023-06-01"}

    async def main() -> None:
        server = await asyncio.start_server(each_request(answer), "127.0.0.1", 0)
        url = httpx.URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x?q=1")
        async with httpx.AsyncClient(transport=FastTransport(), timeout=2.0) as plain:
            r = await plain.post(url, json=body, headers=headers)
            assert r.json() == {"ok": True}
        async with UpstreamClient(transport=FastTransport(), timeout=2.0) as c:
            r = await c.post(url, json=body, headers=headers, timeout=1.5)
            assert r.json() == {"ok": True} and r.status_code == 200
            assert isinstance(r, httpx.Response) and r.request.url == url
            r = await c.post(url.copy_with(path="/gz"), json={})
            assert r.json() == {"zipped": True}
            r = await c.post(url.copy_with(path="/bad"), json={})
            assert r.status_code == 429 and r.headers["retry-after"] == "3"
            assert r.json() == {"error": {}}
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert seen[0] == seen[1]  # byte for byte what httpx itself sends
    assert "h\u00e9llo \u2603".encode() in seen[1]


@pytest.mark.parametrize("via", ["post", "send", "httpx"])
@pytest.mark.parametrize("bad", ["sk-x\r\nX-Injected: 1", "sk-x\nX-Injected: 1", "sk-\x00x"])
def test_a_header_value_with_a_line_break_is_refused_not_sent(via, bad):
    """A secret with a CR, LF or NUL in it (read from the environment as it was written)
    must not end its header line and smuggle in another header: the request is refused with
    httpx's LocalProtocolError, through UpstreamClient.post's own writer, through
    FastTransport under httpx's client, and (the reference) through httpx's own transport,
    and nothing reaches the provider."""
    from gateway.transport import UpstreamClient

    seen: list[bytes] = []

    async def answer(req, writer):
        seen.append(req)
        writer.write(OK)

    async def main() -> None:
        server = await asyncio.start_server(each_request(answer), "127.0.0.1", 0)
        url = httpx.URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x")
        kw = {} if via == "httpx" else {"transport": FastTransport(max_connections=2)}
        async with UpstreamClient(timeout=2.0, **kw) as c:
            headers = {"authorization": "Bearer " + bad}
            with pytest.raises(httpx.LocalProtocolError):
                if via == "send":
                    await c.send(c.build_request("POST", url, json={}, headers=headers))
                else:
                    await c.post(url, json={}, headers=headers)
            r = await c.post(url, json={}, headers={"authorization": "Bearer sk-x"})
            assert r.json() == {"ok": True}  # the client still works
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert len(seen) == 1 and b"X-Injected" not in seen[0]
