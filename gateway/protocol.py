"""The HTTP protocol `byok-ledger serve` runs: uvicorn's httptools protocol over a
transport that coalesces the writes of one event-loop iteration.

uvicorn writes a response's status line and headers, then each body message, as separate
writes: for a JSON answer that is two system calls and two TCP segments, and the client
wakes up twice. On the 2-core build machine a loopback write costs tens of microseconds
of kernel time, so the gateway's answers leave as one write; under load, the SSE chunks
of one stream that are ready at once leave together too. Nothing waits for this: the
write happens at the end of the loop iteration that produced it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescedWrites:
    """An asyncio transport whose writes in one event-loop iteration leave as one
    `write` (at the end of the iteration, or at `close`, in order); a closed transport
    gets nothing more. Everything else is the real transport's."""

    __slots__ = ("_transport", "_loop", "_buf")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._buf: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._buf:
            self._loop.call_soon(self._flush)
        self._buf.append(data)

    def _flush(self) -> None:
        buf = self._buf
        if buf:
            self._buf = []
            if not self._transport.is_closing():
                self._transport.write(buf[0] if len(buf) == 1 else b"".join(buf))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through `CoalescedWrites`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescedWrites(transport))  # type: ignore[arg-type]
