"""Idempotent requests: a served answer is kept under (API key, idempotency key) for
`router.idempotency_ttl_s` (router clock), and a repeat is answered from it without a
provider call. Concurrent duplicates wait for the in-flight original (one owner per key);
if the original fails, the next one runs. Errors are not kept (the caller may retry).

The store is bounded: above `MAX_ENTRIES` expired entries are dropped, then the oldest
half if all are still live.
"""

from __future__ import annotations

import threading
from typing import Any

from routing_core.request import Completion, RequestCtx

MAX_ENTRIES = 100_000


class IdempotencyStore:
    """Thread-safe; one per router process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[tuple[str | None, str], tuple[float, Completion, Any]] = {}
        self._inflight: dict[tuple[str | None, str], threading.Event] = {}

    def claim(
        self, ctx: RequestCtx, now_s: float
    ) -> tuple[tuple[Completion, Any] | None, threading.Event | None]:
        """For a call with an idempotency key: `(stored answer, its resolved caller)` to
        replay; or an event to wait on while the original is in flight; or `(None, None)`
        when this call now owns the key (`ctx.idem_event` is set; `release` it)."""
        ikey = (ctx.api_key_id, ctx.idempotency_key or "")
        with self._lock:
            hit = self._done.get(ikey)
            if hit is not None and hit[0] <= now_s:
                self._done.pop(ikey, None)  # expired
                hit = None
            if hit is not None:
                return (hit[1], hit[2]), None
            waiting = self._inflight.get(ikey)
            if waiting is not None:
                return None, waiting
            ctx.idem_event = self._inflight[ikey] = threading.Event()
        return None, None

    def remember(self, ctx: RequestCtx, comp: Completion, ttl_s: float) -> None:
        """Keep a served answer (if the call had a key) and release waiting duplicates."""
        if ctx.idempotency_key is not None:
            now = ctx.start.timestamp()
            with self._lock:
                if len(self._done) > MAX_ENTRIES:
                    self._done = {k: v for k, v in self._done.items() if v[0] > now}
                    if len(self._done) > MAX_ENTRIES:  # all live: drop the oldest half
                        self._done = dict(list(self._done.items())[MAX_ENTRIES // 2 :])
                self._done[(ctx.api_key_id, ctx.idempotency_key)] = (
                    now + ttl_s,
                    comp,
                    ctx.resolved,
                )
        self.release(ctx)

    def release(self, ctx: RequestCtx) -> None:
        """Let calls waiting on this call's key look again (idempotent)."""
        ev = ctx.idem_event
        if ev is not None:
            ctx.idem_event = None
            with self._lock:
                ikey = (ctx.api_key_id, ctx.idempotency_key or "")
                if self._inflight.get(ikey) is ev:
                    del self._inflight[ikey]
            ev.set()

    def __len__(self) -> int:
        return len(self._done)
