"""Router mode: drives the real `routing_core.Router` against the loopback fake providers
with simulated time. One shared `SimClock` is the router's clock, the fakes' clock and
(through `sleep`) the only thing backoff and Retry-After waits advance; nothing sleeps for
real. Workflows run as a single time-ordered event queue, so the run is sequential and
deterministic; the app behaviour (retries on 429/5xx, agent loops continuing, outcome
reports) lives here.

The router gets a seeded `id_factory` (request and event ids) and a `SimTimer` (every
`duration_ms`/`latency_ms`): each provider call advances the timer by a latency model of its
answer (status, planned tokens), each timer reading by a small tick of router work. So two
runs with a seed write byte-identical logs, and every byte is what the router wrote.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from routing_core.config import LedgerConfig
from routing_core.router import Router
from routing_core.routes import RouteError
from routing_core.schema import Usage
from simulator.fake_providers import Fleet, demo_secrets, start_fleet, text_of
from simulator.faults import FaultEvent, program_fakes
from simulator.traffic import Call, Workflow

WRITER_ID = "router-sim"
_MARK = re.compile(r"\[sim:([^\]]+)\]")
_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file of the repository",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    }
]
RETRYABLE = {429, 502, 503}


ROUTER_TICK_S = 0.00005  # simulated router work per timer reading (50 µs)


class SimClock:
    """Simulated UTC time shared by router and fakes; only moves forward."""

    def __init__(self, start: dt.datetime):
        self._t = start

    def __call__(self) -> dt.datetime:
        return self._t

    def set(self, t: dt.datetime) -> None:
        if t > self._t:
            self._t = t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._t += dt.timedelta(seconds=seconds)


class SimTimer:
    """The router's monotonic timer in simulated seconds. It is not the `SimClock`: the
    router adds injected sleeps to durations itself, so the timer only counts provider
    latency (`advance`) and a tick of router work per reading."""

    def __init__(self) -> None:
        self._t = 0.0

    def __call__(self) -> float:
        self._t += ROUTER_TICK_S
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds


def seeded_ids(seed: int) -> Callable[[], str]:
    """An `id_factory` for the Router: 24 hex digits from the seed and a counter."""
    n = 0

    def new_id() -> str:
        nonlocal n
        n += 1
        return hashlib.sha256(f"{seed}:id:{n}".encode()).hexdigest()[:24]

    return new_id


class _LatencyTransport(httpx.BaseTransport):
    """Real HTTP to the loopback fakes; after each answer (or transport failure) it tells
    the driver, which charges the `SimTimer` the modeled latency of that answer."""

    def __init__(self, on_answer: Callable[[int | None], None]):
        self._inner = httpx.HTTPTransport()
        self._on_answer = on_answer

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            resp = self._inner.handle_request(request)
        except httpx.TransportError:
            self._on_answer(None)
            raise
        self._on_answer(resp.status_code)
        return resp

    def close(self) -> None:
        self._inner.close()


@dataclass(slots=True)
class DriveStats:
    calls: int = 0
    ok: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    outcomes: int = 0
    workflows: int = 0
    app_retries: int = 0
    replays: int = 0


def make_usage_fn(config: LedgerConfig, planned: dict[str, Call]) -> Callable[[dict], Usage]:
    """The fakes' `usage_fn`: the planned usage of the call named in the prompt marker,
    adapted to what the endpoint can meter (no cache price -> plain input; reasoning only on
    reasoning models)."""
    no_cache_read = set()
    no_cache_write = set()
    reasoning = set()
    for m in config.models:
        for ep in m.endpoints:
            if ep.price.cached_input is None:
                no_cache_read.add(ep.upstream_model)
            if ep.price.cache_write is None:
                no_cache_write.add(ep.upstream_model)
            if "reasoning" in ep.supports:
                reasoning.add(ep.upstream_model)

    def usage_fn(body: dict[str, Any]) -> Usage:
        m = _MARK.search(text_of(body))
        c = planned.get(m.group(1)) if m else None
        if c is None:
            return Usage(input_tokens=50, output_tokens=20)
        model = str(body.get("model", ""))
        inp, cr, cw = c.input_tokens, c.cache_read_tokens, c.cache_write_tokens
        if model in no_cache_read:
            inp, cr = inp + cr, 0
        if model in no_cache_write:
            inp, cw = inp + cw, 0
        return Usage(inp, cr, cw, c.output_tokens, c.reasoning_tokens if model in reasoning else 0)

    return usage_fn


class RouterDriver:
    """Runs workflows through a real Router against a fleet of fakes."""

    def __init__(
        self,
        config: LedgerConfig,
        log_dir: Path,
        seed: int,
        start: dt.datetime,
        faults: list[FaultEvent],
        quality: dict[str, float],
    ):
        self.config = config
        self.seed = seed
        self.clock = SimClock(start)
        self.planned: dict[str, Call] = {}
        self.quality = quality
        secrets = demo_secrets(config)
        self.fleet: Fleet = start_fleet(
            config, secrets, clock=self.clock, usage_fn=make_usage_fn(config, self.planned)
        )
        program_fakes(self.fleet, faults)
        self.timer = SimTimer()
        self._call: Call | None = None  # the call in flight (for the latency model)
        self._lat_rng = random.Random(0)
        self.http = httpx.Client(transport=_LatencyTransport(self._charge_latency))
        self.router = Router(
            config,
            log_dir=log_dir,
            writer_id=WRITER_ID,
            secrets=self.fleet.secrets,
            base_urls=self.fleet.base_urls,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng_seed=seed,
            seed_spend_from_logs=False,
            http_client=self.http,
            id_factory=seeded_ids(seed),
            timer=self.timer,
        )
        self.stats = DriveStats()

    def close(self) -> None:
        self.router.close()
        self.http.close()
        self.fleet.close()

    def _charge_latency(self, status: int | None) -> None:
        self.timer.advance(_latency_ms(self._lat_rng, status, self._call) / 1000.0)

    # ------------------------------------------------------------------ one call

    def _complete(self, wf: Workflow, step: int, *, idem: str | None = None):
        call = wf.calls[step]
        call_id = f"{wf.wf_id}.{step}"
        self.planned[call_id] = call
        self._call = call
        self._lat_rng = random.Random(f"{self.seed}:latency:{self.stats.calls}")
        kw: dict[str, Any] = dict(
            api_key_id=wf.api_key_id,
            models=list(wf.models),
            messages=[{"role": "user", "content": f"[sim:{call_id}] {wf.style} step"}],
            max_tokens=max(256, call.output_tokens * 2),
            workload=wf.workload,
            member_id=wf.member_id,
            workflow_id=wf.wf_id,
            idempotency_key=idem,
        )
        if wf.style == "agent":
            kw["tools"] = _TOOLS
        self.stats.calls += 1
        try:
            comp = self.router.complete(**kw)
            result: Any = comp
            self.stats.ok += 1
        except RouteError as e:
            result = e
            self.stats.errors[e.code] = self.stats.errors.get(e.code, 0) + 1
        return result

    # ------------------------------------------------------------------ the event loop

    def run(
        self,
        workflows: list[Workflow],
        until: dt.datetime,
        progress: Callable[[dt.datetime, int], None] | None = None,
    ) -> DriveStats:
        """Run every workflow; nothing happens at or after `until` (the period's end: the
        apps' work that would spill into the next day is cut, as invoices end there too)."""
        # (ts, seq, kind, workflow index, step, retry)
        q: list[tuple[dt.datetime, int, str, int, int, int]] = []
        seq = 0
        for i, wf in enumerate(workflows):
            q.append((wf.start, seq, "call", i, 0, 0))
            seq += 1
        heapq.heapify(q)
        served_models: dict[int, list[str]] = {}
        failed: dict[int, int] = {}
        self.stats.workflows = len(workflows)
        while q:
            ts, _, kind, i, step, retry = heapq.heappop(q)
            if ts >= until or self.clock() >= until:
                continue
            wf = workflows[i]
            self.clock.set(ts)
            rng = random.Random(f"{self.seed}:app:{wf.wf_id}:{step}:{retry}:{kind}")
            if kind == "outcome":
                self._outcome_workflow(wf, served_models.get(i, []), failed.get(i, 0), rng)
                continue
            call = wf.calls[step]
            replay = kind == "replay"
            idem = f"{wf.wf_id}.{step}" if wf.idempotent_double and step == 0 else None
            res = self._complete(wf, step, idem=idem)
            if replay:
                self.stats.replays += 1
                continue
            if progress:
                progress(ts, self.stats.calls)
            now = self.clock()
            if isinstance(res, RouteError):
                failed[i] = failed.get(i, 0) + 1
                if (
                    res.code in RETRYABLE
                    and retry < 2
                    and (wf.meta or {}).get("on_error") != "continue"
                ):
                    self.stats.app_retries += 1
                    heapq.heappush(
                        q,
                        (
                            now + dt.timedelta(seconds=20 + 70 * rng.random()),
                            seq,
                            "call",
                            i,
                            step,
                            retry + 1,
                        ),
                    )
                    seq += 1
                    continue
                if (wf.meta or {}).get("on_error") == "continue":
                    if failed[i] >= int((wf.meta or {}).get("max_errors", "10")):
                        continue  # the script finally gives up
                elif wf.style in ("agent", "chat"):
                    # The workflow stops here; report it if it reports at all.
                    if wf.outcome_per == "workflow":
                        heapq.heappush(
                            q, (now + dt.timedelta(seconds=30), seq, "outcome", i, step, 0)
                        )
                        seq += 1
                    continue
            else:
                served_models.setdefault(i, []).append(res.model)
                if wf.outcome_per == "request":
                    self._outcome_request(wf, res, rng)
                if idem and not replay:
                    # The user double-clicked: the same idempotency key comes again.
                    heapq.heappush(q, (now + dt.timedelta(seconds=1.5), seq, "replay", i, step, 0))
                    seq += 1
            if step + 1 < len(wf.calls):
                nxt = wf.calls[step + 1]
                gap = nxt.offset_s - call.offset_s
                heapq.heappush(
                    q, (max(now, ts + dt.timedelta(seconds=gap)), seq, "call", i, step + 1, 0)
                )
                seq += 1
            elif wf.outcome_per == "workflow":
                heapq.heappush(
                    q,
                    (
                        now + dt.timedelta(seconds=30 + 200 * rng.random()),
                        seq,
                        "outcome",
                        i,
                        step,
                        0,
                    ),
                )
                seq += 1
        return self.stats

    # ------------------------------------------------------------------ outcomes

    def _outcome_request(self, wf: Workflow, comp: Any, rng: random.Random) -> None:
        p = self.quality.get(comp.model, 0.75)
        accepted = rng.random() < p
        at = self.clock() + dt.timedelta(seconds=5 + 120 * rng.random())
        self.router.record_outcome(
            request_id=comp.request_id,
            accepted=accepted,
            score=round(p if accepted else 1 - p, 2),
            reason=None if accepted else "rejected_by_user",
            ts=at,
        )
        self.stats.outcomes += 1
        if rng.random() < 0.02:
            # A reviewer changes their mind later: the last event wins.
            self.router.record_outcome(
                request_id=comp.request_id,
                accepted=not accepted,
                reason="revised",
                ts=at + dt.timedelta(minutes=10),
            )
            self.stats.outcomes += 1

    def _outcome_workflow(
        self, wf: Workflow, models: list[str], failures: int, rng: random.Random
    ) -> None:
        if not models:
            self.router.record_outcome(
                workflow_id=wf.wf_id, accepted=False, reason="failed", ts=self.clock()
            )
        else:
            # A workflow is as good as its weakest answer, and errors along the way hurt.
            p = min(self.quality.get(m, 0.75) for m in models) * (0.85**failures)
            accepted = rng.random() < p
            self.router.record_outcome(
                workflow_id=wf.wf_id,
                accepted=accepted,
                score=round(p, 2),
                reason=None if accepted else "rejected_by_user",
                ts=self.clock(),
            )
        self.stats.outcomes += 1


# --------------------------------------------------------------------------- latency model


def _latency_ms(rng: random.Random, status: int | None, call: Call | None) -> float:
    """How long a provider takes to give this answer (`status` None: no answer at all)."""
    if status == 200:
        if call is None:
            n_in, n_out = 1000, 20
        else:
            n_in = call.input_tokens + call.cache_read_tokens + call.cache_write_tokens
            n_out = call.output_tokens
        return (220 + n_in * 0.02 + n_out * 11.0) * (0.8 + 0.5 * rng.random())
    if status == 429:
        return 30 + 60 * rng.random()
    if status in (401, 403):
        return 20 + 40 * rng.random()
    return 150 + 850 * rng.random()
