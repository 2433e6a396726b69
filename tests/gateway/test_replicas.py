"""Three `byok-ledger serve` processes sharing the real Redis: 1,000 concurrent requests
against one API key limit never admit more spend than the limit, and a replica killed with
SIGKILL mid-request leaves holds that expire after the reservation TTL, with nothing
counted twice (the Redis counter equals the sum of every logged cost)."""

from __future__ import annotations

import asyncio
import http.server
import secrets
import signal
import time
from decimal import Decimal

import httpx
import pytest
import redis
from gatewaykit import SECRETS, Server, records, write_config

from routing_core.schema import Usage
from routing_core.state_redis import RedisState
from simulator.fake_providers import start_fleet

URL = "redis://127.0.0.1:6379/0"
LIMIT = Decimal("0.05")
MAX_TOKENS = 1000


def full_usage(body: dict) -> Usage:
    # Every answer bills its whole max_tokens, so the actual cost equals the hold's output part.
    return Usage(input_tokens=20, output_tokens=int(body.get("max_tokens") or MAX_TOKENS))


def api_key_measure(rec: dict) -> Decimal:
    c = rec["cost"]  # the "pool" key's limit counts credits + fee + provider (include_byok)
    return (
        Decimal(c["provider_usd"])
        + Decimal(c["platform_fee_usd"])
        + Decimal(c["platform_credits_usd"])
    )


@pytest.fixture
def prefix():
    p = "test-gw-rep-" + secrets.token_hex(6)
    yield p
    r = redis.Redis.from_url(URL)
    for k in r.scan_iter(p + ":*"):
        r.delete(k)
    r.close()


def test_three_replicas_share_one_limit_and_a_killed_one_expires(tmp_path, prefix, monkeypatch):
    # 1,000 concurrent connections reach the fake provider: give its listening socket a
    # real backlog (the stdlib default of 5 drops SYNs and turns the test into a timer).
    monkeypatch.setattr(http.server.ThreadingHTTPServer, "request_queue_size", 1024)
    pool_limit = {"usd": str(LIMIT), "reset": "monthly", "include_byok": True}
    router = {
        "state": URL,
        "state_prefix": prefix,
        "reservation_ttl_s": 3,
        "max_concurrent_per_key": 1000,
    }
    _, cfg0 = write_config(tmp_path, {}, router=router)
    with start_fleet(cfg0, usage_fn=full_usage) as fleet:
        from gatewaykit import config_data  # the same key set, with the pool key's limit

        keys = config_data()["api_keys"]
        for k in keys:
            if k["id"] == "pool":
                k["limit"] = pool_limit
        path, cfg = write_config(tmp_path, fleet.base_urls, router=router, api_keys=keys)
        servers = [Server(path, fleet.secrets) for _ in range(3)]
        try:
            body = {
                "model": "m/b",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": MAX_TOKENS,
            }
            headers = {"authorization": "Bearer " + SECRETS["pool"]}

            async def burst(n: int) -> list[int]:
                limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
                async with httpx.AsyncClient(timeout=60.0, limits=limits) as c:

                    async def one(i: int) -> int:
                        url = servers[i % 3].url + "/v1/chat/completions"
                        return (await c.post(url, json=body, headers=headers)).status_code

                    return await asyncio.gather(*(one(i) for i in range(n)))

            t0 = time.monotonic()
            codes = asyncio.run(burst(1000))
            took = time.monotonic() - t0
            assert set(codes) <= {200, 402}, sorted(set(codes))
            ok = codes.count(200)
            recs = [r for r in records(tmp_path / "logs") if r["api_key_id"] == "pool"]
            assert len(recs) == 1000  # one record per request, across three writers
            assert len({r["request_id"] for r in recs}) == 1000
            writers = {p.name for p in (tmp_path / "logs" / "requests").rglob("*.jsonl")}
            assert len(writers) == 3
            served = [r for r in recs if r["status"] == "ok"]
            assert len(served) == ok > 0
            spent = sum((api_key_measure(r) for r in served), Decimal(0))
            assert spent <= LIMIT, (spent, ok, took)
            # Refusals were justified: sequential requests (no holds in flight) fill the
            # rest of the limit up to less than one request's hold, and no further.
            hold = None
            for i in range(200):
                r = httpx.post(
                    servers[i % 3].url + "/v1/chat/completions", json=body, headers=headers
                )
                if r.status_code == 402:
                    hold = Decimal(r.json()["error"]["metadata"]["requested_usd"])
                    break
                assert r.status_code == 200
            assert hold is not None
            recs = [r for r in records(tmp_path / "logs") if r["api_key_id"] == "pool"]
            served = [r for r in recs if r["status"] == "ok"]
            spent = sum((api_key_measure(r) for r in served), Decimal(0))
            assert LIMIT - hold < spent <= LIMIT
            state = RedisState(URL, prefix=prefix)
            guard_key = ("api_key", "pool", recs[0]["ts"][:7])
            assert state.settled(guard_key) == spent  # counted once: Redis == the logs
            assert state.inflight(guard_key) == 0

            # Kill -9 one replica while its requests are held upstream.
            state.r.delete(f"{prefix}:c:api_key|pool|{guard_key[2]}")  # fresh headroom
            fleet["p1"].add_fault("timeout", delay_s=6)
            victim = servers[2]

            async def stuck(n: int) -> None:
                async with httpx.AsyncClient(timeout=10.0) as c:
                    tasks = [
                        asyncio.create_task(
                            c.post(victim.url + "/v1/chat/completions", json=body, headers=headers)
                        )
                        for _ in range(n)
                    ]
                    await asyncio.sleep(0.8)
                    victim.proc.send_signal(signal.SIGKILL)
                    await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run(stuck(5))
            victim.proc.wait(timeout=10)
            held = state.inflight(guard_key)
            assert held > 0  # the dead replica's holds are still there ...
            time.sleep(3.5)
            assert state.inflight(guard_key) == 0  # ... until their TTL passes
            fleet.reset()
            r = httpx.post(servers[0].url + "/v1/chat/completions", json=body, headers=headers)
            assert r.status_code == 200  # the headroom is back for the live replicas
            raw = state.r.hgetall(f"{prefix}:c:api_key|pool|{guard_key[2]}")
            assert int(raw[b"inflight"]) == 0  # the purge subtracted the dead holds once
            after = [x for x in records(tmp_path / "logs") if x["api_key_id"] == "pool"]
            new_ok = [x for x in after if x["status"] == "ok" and x not in served]
            assert state.settled(guard_key) == sum((api_key_measure(x) for x in new_ok), Decimal(0))
            state.close()
        finally:
            for s in servers:
                s.stop()
