"""Budget state in the real Redis on this machine (`router.state: redis://...`): atomic
all-or-nothing holds under concurrency, TTL expiry of a dead holder's reservations, settle
after expiry counted once, per-period counters, and one re-seed from the logs shared by
many processes. Each test uses its own key prefix; Redis unreachable is a failure."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from routing_core.budgets import SpendGuard
from routing_core.config import parse_config
from routing_core.routes import RouteError
from routing_core.schema import Cost
from routing_core.state_redis import RedisState, from_nanos, period_expiry_ms, to_nanos

URL = "redis://127.0.0.1:6379/0"
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def prefix() -> Iterator[str]:
    p = "test-gw-" + secrets.token_hex(6)
    yield p
    r = redis.Redis.from_url(URL)
    for k in r.scan_iter(p + ":*"):
        r.delete(k)
    r.close()


def cfg(prefix: str, ttl: float = 30.0, limit: str = "1.00"):
    return parse_config(
        {
            "providers": [
                {
                    "id": "p1",
                    "api": "openai",
                    "base_url": "http://127.0.0.1:9/v1",
                    "invoice_format": "focus",
                }
            ],
            "models": [
                {
                    "id": "m/a",
                    "endpoints": [
                        {
                            "provider": "p1",
                            "upstream_model": "a",
                            "price": {"input": "1", "output": "2"},
                        }
                    ],
                }
            ],
            "api_keys": [
                {
                    "id": "app",
                    "secret_sha256": "0" * 64,
                    "environment": "prod",
                    "app": "t",
                    "limit": {"usd": limit, "reset": "monthly", "include_byok": True},
                }
            ],
            "router": {"state": URL, "state_prefix": prefix, "reservation_ttl_s": ttl},
        }
    )


def cost(usd: str) -> Cost:
    return Cost(list_usd=Decimal(usd), provider_usd=Decimal(usd))


def test_unreachable_redis_is_a_clear_error(prefix):
    with pytest.raises(ConnectionError, match="cannot reach Redis"):
        RedisState("redis://127.0.0.1:1/0", prefix=prefix)


def test_nanodollars_round_trip_and_holds_round_up():
    assert to_nanos(Decimal("0.1234567891"), up=True) == 123456790
    assert to_nanos(Decimal("0.1234567891")) == 123456789
    assert from_nanos(123456789) == Decimal("0.123456789")
    assert period_expiry_ms("none", "") == 0
    end = dt.datetime(2026, 12, 1, tzinfo=dt.UTC) + dt.timedelta(days=35)
    assert period_expiry_ms("monthly", "2026-11") == int(end.timestamp() * 1000)
    assert period_expiry_ms("weekly", "2026-W47") > period_expiry_ms("daily", "2026-11-20")


def test_concurrent_reservations_never_overshoot(prefix):
    guards = [SpendGuard(cfg(prefix)) for _ in range(3)]  # three "replicas"
    admitted = []
    lock = threading.Lock()

    def worker(g: SpendGuard) -> None:
        for _ in range(40):
            try:
                res = g.reserve("app", None, Decimal("0.03"), "byok", NOW)
            except RouteError as e:
                assert e.code == 402
                continue
            with lock:
                admitted.append((g, res))

    threads = [threading.Thread(target=worker, args=(g,)) for g in guards for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 33  # floor(1.00 / 0.03): not one more across all replicas
    g0 = guards[0]
    assert g0.in_flight("api_key", "app", NOW) == Decimal("0.99")
    for g, res in admitted:
        g.settle(res, cost("0.01"))
        g.settle(res, cost("0.01"))  # idempotent
    assert g0.spent("api_key", "app", NOW) == Decimal("0.33")
    assert g0.in_flight("api_key", "app", NOW) == 0
    for g in guards:
        g.close()


def test_a_dead_holders_reservations_expire_and_late_settles_count_once(prefix):
    a = SpendGuard(cfg(prefix, ttl=0.5))
    b = SpendGuard(cfg(prefix, ttl=0.5))
    held = a.reserve("app", None, Decimal("0.9"), "byok", NOW)  # "replica a" then dies
    with pytest.raises(RouteError) as e:
        b.reserve("app", None, Decimal("0.2"), "byok", NOW)
    assert e.value.metadata["remaining_usd"] == "0.100000000"
    time.sleep(0.7)
    assert b.in_flight("api_key", "app", NOW) == 0
    res = b.reserve("app", None, Decimal("0.2"), "byok", NOW)  # purges the dead hold too
    b.settle(res, cost("0.2"))
    # the "dead" holder was only slow: its late settle counts its cost once and does not
    # subtract the already-expired hold a second time
    a.settle(held, cost("0.5"))
    assert b.spent("api_key", "app", NOW) == Decimal("0.7")
    assert b.in_flight("api_key", "app", NOW) == 0
    raw = a.state.r.hgetall(f"{prefix}:c:api_key|app|2026-11")
    assert int(raw[b"inflight"]) == 0 and int(raw[b"settled"]) == 700_000_000


def test_counters_are_per_calendar_period(prefix):
    g = SpendGuard(cfg(prefix, limit="0.5"))
    g.settle(g.reserve("app", None, Decimal("0.5"), "byok", NOW), cost("0.5"))
    with pytest.raises(RouteError):
        g.reserve("app", None, Decimal("0.1"), "byok", NOW)
    dec = dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)
    g.reserve("app", None, Decimal("0.5"), "byok", dec)  # a new month starts empty
    ttl = g.state.r.pttl(f"{prefix}:c:api_key|app|2026-11")
    assert ttl > 0  # finished periods are forgotten eventually, never lifetime ones
    g.close()


def test_reseed_from_logs_happens_once_across_processes(prefix, tmp_path):
    day = tmp_path / "logs" / "requests" / "dt=2026-11-19"
    day.mkdir(parents=True)
    line = {
        "ts": "2026-11-19T10:00:00.000Z",
        "api_key_id": "app",
        "credential": "byok",
        "cost": {
            "list_usd": "0.25",
            "provider_usd": "0.25",
            "platform_fee_usd": "0",
            "platform_credits_usd": "0",
        },
    }
    (day / "w1.jsonl").write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n{torn")
    guards = [SpendGuard(cfg(prefix)) for _ in range(4)]
    threads = [
        threading.Thread(target=g.seed_from_logs, args=(tmp_path / "logs", NOW)) for g in guards
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert guards[0].spent("api_key", "app", NOW) == Decimal("0.5")  # not 4 x 0.5
    # a restart finds the store seeded and does not count the logs again
    again = SpendGuard(cfg(prefix))
    again.seed_from_logs(tmp_path / "logs", NOW)
    assert again.spent("api_key", "app", NOW) == Decimal("0.5")


def _down(state: RedisState) -> None:
    """Point a live store at a closed port: what a Redis outage looks like to it."""
    state.r.close()
    state.r = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    state._reserve = state.r.register_script(state._reserve.script)
    state._finish = state.r.register_script(state._finish.script)


def test_redis_outage_refuses_new_requests_and_never_loses_a_served_one(prefix, caplog):
    g = SpendGuard(cfg(prefix))
    held = g.reserve("app", None, Decimal("0.1"), "byok", NOW)
    _down(g.state)
    with pytest.raises(RouteError) as e:
        g.reserve("app", None, Decimal("0.1"), "byok", NOW)
    assert e.value.code == 503 and "budget store unreachable" in e.value.message
    g.settle(held, cost("0.05"))  # served before the outage: no exception for the caller
    assert "could not settle reservation" in caplog.text
    assert "0.05" not in e.value.message
