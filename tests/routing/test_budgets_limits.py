"""Spend limits: what each limit counts, UTC calendar periods, per-entity guardrail budgets,
reservations under concurrency, and seeding from existing request logs."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from routing_core.budgets import SpendGuard, period_key
from routing_core.config import parse_config
from routing_core.pricing import ByokFeeMeter
from routing_core.routes import RouteError
from routing_core.schema import Cost

D = Decimal
SHA = "0" * 64


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


def config(**over) -> dict:
    d = {
        "providers": [
            {"id": "p", "api": "openai", "base_url": "http://x", "invoice_format": "focus"}
        ],
        "models": [
            {
                "id": "m",
                "endpoints": [
                    {"provider": "p", "upstream_model": "u", "price": {"input": "1", "output": "1"}}
                ],
            }
        ],
        "api_keys": [
            {
                "id": "a-byok",
                "secret_sha256": SHA,
                "environment": "prod",
                "app": "x",
                "limit": {"usd": "10", "reset": "daily", "include_byok": True},
            },
            {
                "id": "a-credits",
                "secret_sha256": SHA,
                "environment": "prod",
                "app": "x",
                "limit": {"usd": "10", "reset": "monthly", "include_byok": False},
            },
            {"id": "a-g", "secret_sha256": SHA, "environment": "dev", "app": "y", "guardrail": "g"},
            {
                "id": "a-g2",
                "secret_sha256": SHA,
                "environment": "dev",
                "app": "y",
                "guardrail": "g",
            },
            {"id": "a-free", "secret_sha256": SHA, "environment": "dev", "app": "y"},
        ],
        "members": [{"id": "dan", "guardrail": "g"}, {"id": "eve"}],
        "guardrails": [{"id": "g", "budget": {"usd": "5", "reset": "weekly"}}],
    }
    d.update(copy.deepcopy(over))
    return d


def guard(**over) -> SpendGuard:
    return SpendGuard(parse_config(config(**over)))


BYOK = Cost(list_usd=D("4"), provider_usd=D("4"), platform_fee_usd=D("0.2"))
SHARED = Cost(list_usd=D("1"), platform_credits_usd=D("1.05"))


def test_api_key_limit_counts_what_include_byok_says() -> None:
    g = guard()
    when = at("2026-11-20")
    for api in ("a-byok", "a-credits"):
        g.settle(g.reserve(api, None, BYOK, "byok", when), BYOK)
        g.settle(g.reserve(api, None, SHARED, "shared", when), SHARED)
    assert g.spent("api_key", "a-byok", when) == D("5.25")  # 4 + 0.2 + 1.05
    assert g.spent("api_key", "a-credits", when) == D("1.25")  # fee + credits only


def test_over_limit_is_402_naming_scope_and_remaining() -> None:
    g = guard()
    when = at("2026-11-20")
    g.settle(g.reserve("a-byok", None, D("9"), "shared", when), Cost(platform_credits_usd=D("9")))
    with pytest.raises(RouteError) as e:
        g.reserve("a-byok", None, D("1.5"), "shared", when)
    err = e.value
    assert err.code == 402 and "limit exhausted" in err.message
    assert err.metadata["scope"] == "api_key" and err.metadata["scope_id"] == "a-byok"
    assert err.metadata["remaining_usd"] == "1"
    assert g.in_flight("api_key", "a-byok", when) == 0  # a refused request holds nothing
    g.reserve("a-byok", None, D("1"), "shared", when)  # exactly up to the limit is fine


@pytest.mark.parametrize(
    ("reset", "first", "same", "next_period"),
    [
        ("daily", "2026-11-20T23:59:59", "2026-11-20T00:00:00", "2026-11-21T00:00:00"),
        # ISO weeks start on Monday: Sun 22 Nov belongs to the week of Mon 16 Nov.
        ("weekly", "2026-11-16T00:00:00", "2026-11-22T23:00:00", "2026-11-23T00:00:00"),
        ("monthly", "2026-11-01T00:00:00", "2026-11-30T23:59:00", "2026-12-01T00:00:00"),
        ("none", "2020-01-01T00:00:00", "2030-01-01T00:00:00", None),
    ],
)
def test_utc_calendar_periods(reset: str, first: str, same: str, next_period: str | None) -> None:
    over = config()["api_keys"]
    over[0]["limit"] = {"usd": "10", "reset": reset, "include_byok": True}
    g = guard(api_keys=over)

    def t(s: str) -> dt.datetime:
        return dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC)

    g.settle(g.reserve("a-byok", None, D(10), "shared", t(first)), Cost(platform_credits_usd=D(10)))
    with pytest.raises(RouteError):
        g.reserve("a-byok", None, D("0.01"), "shared", t(same))
    if next_period is not None:
        g.reserve("a-byok", None, D("10"), "shared", t(next_period))
        assert period_key(reset, t(first)) != period_key(reset, t(next_period))


def test_period_key_uses_utc() -> None:
    local = dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert period_key("monthly", local) == "2026-12"
    assert period_key("weekly", at("2027-01-01")) == "2026-W53"


def test_guardrail_budgets_are_per_entity_and_count_total_cost() -> None:
    g = guard()
    when = at("2026-11-20")
    # a-g and a-g2 share guardrail g, but each API key has its own $5.
    g.settle(g.reserve("a-g", None, BYOK, "byok", when), BYOK)  # total 4.2
    g.reserve("a-g2", None, D("5"), "shared", when)
    with pytest.raises(RouteError) as e:
        g.reserve("a-g", None, D("1"), "shared", when)
    assert e.value.metadata["scope"] == "guardrail:g"
    assert e.value.metadata["scope_id"] == "api_key:a-g"
    # Member dan (guardrail g) has $5 across every key, even keys without a guardrail.
    g.settle(g.reserve("a-free", "dan", D("3"), "shared", when), Cost(platform_credits_usd=D(3)))
    with pytest.raises(RouteError) as e:
        g.reserve("a-free", "dan", D("2.5"), "shared", when)
    assert e.value.metadata["scope_id"] == "member:dan"
    g.reserve("a-free", "eve", D("50"), "shared", when)  # eve has no guardrail, a-free no limit


def test_default_guardrail_budget_caps_every_key_and_member() -> None:
    g = guard(
        guardrails=[{"id": "g"}, {"id": "default", "budget": {"usd": "2", "reset": "monthly"}}]
    )
    when = at("2026-11-20")
    for api in ("a-free", "a-g", "a-byok"):
        g.reserve(api, None, D("2"), "shared", when)
        with pytest.raises(RouteError) as e:
            g.reserve(api, None, D("0.5"), "shared", when)
        assert e.value.metadata["scope"] == "guardrail:default"
    g2 = guard(
        guardrails=[{"id": "g"}, {"id": "default", "budget": {"usd": "2", "reset": "monthly"}}]
    )
    g2.reserve("a-free", "eve", D("1.5"), "shared", when)
    with pytest.raises(RouteError) as e:
        g2.reserve("a-g", "eve", D("1"), "shared", when)  # eve's own default budget
    assert e.value.metadata["scope_id"] == "member:eve"


def test_release_and_idempotent_settle() -> None:
    g = guard()
    when = at("2026-11-20")
    r = g.reserve("a-byok", None, D("8"), "shared", when)
    assert g.in_flight("api_key", "a-byok", when) == 8
    with pytest.raises(RouteError):
        g.reserve("a-byok", None, D("3"), "shared", when)  # in-flight holds count
    g.release(r)
    g.release(r)
    g.settle(r, Cost(platform_credits_usd=D(8)))  # already released: ignored
    assert g.in_flight("api_key", "a-byok", when) == 0
    assert g.spent("api_key", "a-byok", when) == 0
    r = g.reserve("a-byok", None, D("8"), "shared", when)
    g.settle(r, Cost(platform_credits_usd=D("2")))
    g.settle(r, Cost(platform_credits_usd=D("2")))
    assert g.spent("api_key", "a-byok", when) == 2


def test_concurrent_reservations_never_overshoot() -> None:
    """16 threads race for a $10 daily limit with random max costs; each request's actual
    cost is at most what it reserved. Settled spend never passes the limit, and at every
    moment settled + in flight stays within it."""
    g = guard()
    when = at("2026-11-20")
    limit = D(10)
    granted: list[Decimal] = []
    violations: list[Decimal] = []
    lock = threading.Lock()

    def work(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(300):
            max_cost = D(rnd.randint(1, 300)) / 100
            try:
                res = g.reserve("a-byok", None, max_cost, "shared", when)
            except RouteError:
                continue
            used = g.spent("api_key", "a-byok", when) + g.in_flight("api_key", "a-byok", when)
            if used > limit:
                with lock:
                    violations.append(used)
            if rnd.random() < 0.3:
                g.release(res)
            else:
                actual = max_cost * D(rnd.randint(0, 100)) / 100
                g.settle(res, Cost(platform_credits_usd=actual))
                with lock:
                    granted.append(actual)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not violations
    assert g.in_flight("api_key", "a-byok", when) == 0
    assert g.spent("api_key", "a-byok", when) == sum(granted)
    assert sum(granted) <= limit
    assert sum(granted) > limit / 2  # the limit was actually contended


def _line(ts: str, api: str, credential: str, cost: dict, member: str | None = None) -> str:
    return json.dumps(
        {
            "schema_version": 1,
            "request_id": ts,
            "ts": ts,
            "api_key_id": api,
            "member_id": member,
            "credential": credential,
            "status": "ok",
            "cost": cost,
        }
    )


def test_seed_from_logs_counts_current_periods_and_tolerates_a_torn_line(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    c_byok = {
        "list_usd": "2",
        "provider_usd": "2",
        "platform_fee_usd": "0.1",
        "platform_credits_usd": "0",
    }
    c_shared = {
        "list_usd": "1",
        "provider_usd": "0",
        "platform_fee_usd": "0",
        "platform_credits_usd": "1.05",
    }
    files = {
        "dt=2026-11-19/w1.jsonl": [_line("2026-11-19T10:00:00.000Z", "a-byok", "byok", c_byok)],
        "dt=2026-11-20/w1.jsonl": [
            _line("2026-11-20T01:00:00.000Z", "a-byok", "byok", c_byok),
            _line("2026-11-20T02:00:00.000Z", "a-credits", "byok", c_byok),
            _line("2026-11-20T03:00:00.000Z", "a-free", "shared", c_shared, member="dan"),
        ],
        "dt=2026-11-20/w2.jsonl": [_line("2026-11-20T04:00:00.000Z", "a-byok", "shared", c_shared)],
        "dt=2026-10-31/w1.jsonl": [_line("2026-10-31T10:00:00.000Z", "a-credits", "byok", c_byok)],
    }
    for name, lines in files.items():
        f = logs / "requests" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("\n".join(lines) + "\n")
    with (logs / "requests" / "dt=2026-11-20" / "w2.jsonl").open("a") as fh:
        fh.write('{"schema_version": 1, "ts": "2026-11-20T05:00:00.000Z", "api_key_id": "a-by')
    g = guard()
    meter = ByokFeeMeter(D(5), D(0))
    now = at("2026-11-20", 18)
    n = g.seed_from_logs(logs, now, fee_meter=meter)
    assert n == 5  # the October line is outside every current period; the torn line skipped
    assert g.spent("api_key", "a-byok", now) == D("2.1") + D("1.05")  # daily: the 19th is gone
    assert g.spent("api_key", "a-credits", now) == D("0.1")  # monthly, fee only
    assert g.spent("guardrail:g", "member:dan", now) == D("1.05")  # weekly
    assert meter.month_to_date("2026-11") == D("6")  # three BYOK lines in November
    with pytest.raises(RouteError):
        g.reserve("a-byok", None, D("7"), "shared", now)


def test_seed_from_missing_logs_dir_is_empty(tmp_path: Path) -> None:
    assert guard().seed_from_logs(tmp_path / "nothing", at("2026-11-20")) == 0
