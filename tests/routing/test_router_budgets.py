"""Budgets under concurrency: many simultaneous requests (threads and asyncio) against one
API key limit. Reservations are taken before the provider call, so the settled spend never
passes the limit (each hold is at least the request's real cost) and 402s cost nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from routing_core.routes import RouteError
from routing_core.schema import Usage

LIMIT = Decimal("0.05")
PROMPT = [{"role": "user", "content": "x" * 2400}]  # holds assume >= 1 token / 2 chars
USAGE = Usage(input_tokens=1000, output_tokens=1000)


def limited(small_cfg):
    return small_cfg(
        api_keys=[
            {
                "id": "app",
                "secret_sha256": "0" * 64,
                "environment": "prod",
                "app": "t",
                "limit": {"usd": str(LIMIT), "reset": "monthly", "include_byok": True},
            }
        ],
    )


def outcome(fn):
    try:
        return fn()
    except RouteError as e:
        return e


def check(router, results, logged, fleet):
    ok = [r for r in results if not isinstance(r, RouteError)]
    refused = [r for r in results if isinstance(r, RouteError)]
    assert all(e.code == 402 for e in refused), [str(e) for e in refused]
    assert ok and refused  # the limit was reached inside the burst
    spent = sum(
        (c.cost.provider_usd + c.cost.platform_fee_usd + c.cost.platform_credits_usd for c in ok),
        Decimal(0),
    )
    assert spent <= LIMIT
    now = dt.datetime.now(dt.UTC)
    assert router.guard.spent("api_key", "app", now) == spent
    assert router.guard.in_flight("api_key", "app", now) == 0  # every hold settled/released
    # Refused requests never reached a provider; the log has one record per call.
    assert sum(1 for s in fleet.served() if s.status == 200) == len(ok)
    recs = logged(router)
    assert len(recs) == len(results)
    assert sum(1 for r in recs if r["error_code"] == 402) == len(refused)


def test_threads_never_overshoot_the_limit(
    small_cfg, small_fleet, make_router, logged, usage_switch
):
    usage_switch.fn = lambda body: USAGE
    router = make_router(limited(small_cfg), small_fleet)

    def one(_):
        return outcome(
            lambda: router.complete(api_key_id="app", model="m/b", messages=PROMPT, max_tokens=1000)
        )

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(60)))
    check(router, results, logged, small_fleet)


def test_asyncio_never_overshoots_the_limit(
    small_cfg, small_fleet, make_router, logged, usage_switch
):
    usage_switch.fn = lambda body: USAGE
    router = make_router(limited(small_cfg), small_fleet)

    async def one():
        try:
            return await router.acomplete(
                api_key_id="app", model="m/b", messages=PROMPT, max_tokens=1000
            )
        except RouteError as e:
            return e

    async def go():
        try:
            return await asyncio.gather(*[one() for _ in range(60)])
        finally:
            await router.aclose()

    results = asyncio.run(go())
    check(router, results, logged, small_fleet)


def test_spend_survives_a_restart_via_the_logs(
    small_cfg, small_fleet, make_router, usage_switch, tmp_path
):
    usage_switch.fn = lambda body: USAGE
    cfg = limited(small_cfg)
    r1 = make_router(cfg, small_fleet, log_dir=tmp_path / "logs")
    for _ in range(10):
        r1.complete(api_key_id="app", model="m/b", messages=PROMPT, max_tokens=1000)
    r1.close()
    now = dt.datetime.now(dt.UTC)
    r2 = make_router(cfg, small_fleet, log_dir=tmp_path / "logs")
    assert r2.guard.spent("api_key", "app", now) == r1.guard.spent("api_key", "app", now) > 0
    # The restarted router refuses sooner than a fresh one would.
    served = 0
    with pytest.raises(RouteError) as ei:
        for _ in range(100):
            r2.complete(api_key_id="app", model="m/b", messages=PROMPT, max_tokens=1000)
            served += 1
    assert ei.value.code == 402 and 10 + served <= 32


def test_cancelled_async_request_releases_its_hold_and_is_logged(
    small_cfg, small_fleet, make_router, logged
):
    router = make_router(limited(small_cfg), small_fleet)
    small_fleet["p1"].add_fault("timeout", delay_s=1.5)

    async def go():
        try:
            await asyncio.wait_for(
                router.acomplete(api_key_id="app", model="m/b", messages=PROMPT, max_tokens=1000),
                timeout=0.2,
            )
        finally:
            await router.aclose()

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(go())
    now = dt.datetime.now(dt.UTC)
    assert router.guard.in_flight("api_key", "app", now) == 0
    [rec] = logged(router)
    assert rec["status"] == "error" and rec["error_code"] == 499
