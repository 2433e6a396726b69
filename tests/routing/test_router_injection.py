"""Injected `id_factory` and `timer`: request and event ids come from the factory, every
`latency_ms`/`duration_ms` is a difference of timer readings (plus injected sleeps), so two
routers fed the same traffic write byte-identical logs."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from routing_core.router import Router
from routing_core.routes import RouteError
from routing_core.schema import Usage

API = {
    "id": "app",
    "secret_sha256": "0" * 64,
    "environment": "prod",
    "app": "t",
    "default_workload": "w",
}
ONE_ROUTE = [{"id": "w", "shared_fallback": False, "max_attempts": 4, "deadline_s": 30}]


class StepTimer:
    """Monotonic seconds that move only when the fake provider serves (`advance`)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def counter_ids(prefix: str):
    n = itertools.count(1)
    return lambda: f"{prefix}{next(n):04d}"


def msg() -> list[dict]:
    return [{"role": "user", "content": "hi"}]


def test_ids_and_durations_come_from_the_injected_factory_and_timer(
    small_cfg, small_fleet, make_router, logged, usage_switch, clock
):
    timer = StepTimer()

    def slow_usage(body: dict) -> Usage:
        timer.advance(1.5)  # the provider takes 1.5 s of the injected timer to answer
        return Usage(input_tokens=20, output_tokens=10)

    usage_switch.fn = slow_usage
    cfg = small_cfg(workloads=ONE_ROUTE, api_keys=[API])
    router = make_router(cfg, small_fleet, clock=clock, id_factory=counter_ids("x"), timer=timer)
    small_fleet["p1"].add_fault("rate_limit", key="k1", times=1, retry_after=2)
    c = router.complete(api_key_id="app", model="m/b", messages=msg())
    assert c.request_id == "req_x0001"
    assert [a["latency_ms"] for a in c.attempts] == [0.0, 1500.0]  # the 429 took no time
    event_id = router.record_outcome(request_id=c.request_id, accepted=True)
    assert event_id == "evt_x0002"
    [rec] = logged(router)
    assert rec["request_id"] == "req_x0001"
    assert [a["status"] for a in rec["attempts"]] == ["rate_limited", "ok"]
    # 1.5 s of provider time plus the injected 2 s Retry-After sleep, nothing from the wall.
    assert rec["duration_ms"] == 3500.0


def test_async_uses_the_same_injected_ids_and_timer(
    small_cfg, small_fleet, tmp_path, clock, usage_switch
):
    timer = StepTimer()

    def slow_usage(body: dict) -> Usage:
        timer.advance(0.25)
        return Usage(input_tokens=20, output_tokens=10)

    usage_switch.fn = slow_usage

    async def go():
        async with Router(
            small_cfg(workloads=ONE_ROUTE, api_keys=[API]),
            log_dir=tmp_path / "logs",
            secrets=small_fleet.secrets,
            base_urls=small_fleet.base_urls,
            clock=clock,
            id_factory=counter_ids("a"),
            timer=timer,
            seed_spend_from_logs=False,
        ) as router:
            return await router.acomplete(api_key_id="app", model="m/b", messages=msg())

    c = asyncio.run(go())
    assert c.request_id == "req_a0001"
    assert [a["latency_ms"] for a in c.attempts] == [250.0]


def _traffic(router) -> None:
    router.complete(api_key_id="app", model="m/a", messages=msg())
    router.complete(api_key_id="app", model="m/b", messages=msg(), workflow_id="wf-1")
    with pytest.raises(RouteError):  # a logged 4xx is part of the traffic
        router.complete(api_key_id="app", model="m/none", messages=msg())
    router.record_outcome(workflow_id="wf-1", accepted=False, reason="meh")


def test_same_injected_ids_and_timer_give_byte_identical_logs(
    small_cfg, small_fleet, make_router, usage_switch, clock, tmp_path
):
    cfg = small_cfg(api_keys=[API])
    trees = []
    for run in ("a", "b"):
        small_fleet.reset()
        timer = StepTimer()

        def usage(body: dict, timer=timer) -> Usage:
            timer.advance(0.125)
            return Usage(input_tokens=20, output_tokens=10)

        usage_switch.fn = usage
        small_fleet["p1"].add_fault("server_error", key="k1", times=1)  # one failover
        router = make_router(
            cfg,
            small_fleet,
            log_dir=tmp_path / run,
            writer_id="w",
            clock=clock,
            id_factory=counter_ids("s"),
            timer=timer,
        )
        _traffic(router)
        router.close()
        root: Path = tmp_path / run
        trees.append({str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.jsonl")})
    assert len(trees[0]) == 2  # requests and outcomes
    assert trees[0] == trees[1]
