"""Provider usage is bounded before pricing (routing_core.usage): absurd, missing, string,
negative, non-integer and infinite counts from a real loopback fake (both wires) give the
caller a normal answer, a record flagged `usage_source` clamped/estimated, a cost of at most
one request's worth, and a budget that is intact before and after a restart (a new Router
re-seeded from the same logs). Poisoned lines already on disk are bounded the same way."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import pytest

from routing_core.providers.anthropic import parse_anthropic_usage
from routing_core.providers.openai import parse_openai_usage
from routing_core.routes import RouteError
from routing_core.schema import Usage
from routing_core.usage import (
    INVALID,
    MAX_TOKENS_TOLERANCE,
    STATE_INVALID,
    STATE_MISSING,
    STATE_OK,
    bound_usage,
    read_count,
)
from simulator.fake_providers import OMIT

LIMIT_USD = Decimal("1")
API_KEYS = [
    {
        "id": "app",
        "secret_sha256": "0" * 64,
        "environment": "prod",
        "app": "t",
        "limit": {"usd": str(LIMIT_USD), "reset": "monthly", "include_byok": True},
    }
]
MSGS = [{"role": "user", "content": "What were the quarterly numbers? " * 4}]
MAX_TOKENS = 50


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (0, 0),
        (5.0, 5),
        (None, 0),
        (10**12, 10**12),
        (10**12 + 1, None),
        (10**20, None),
        (1e20, None),
        (math.inf, None),
        (-math.inf, None),
        (math.nan, None),
        (-1, None),
        (1.5, None),
        ("5", None),
        (True, None),
        ([5], None),
        ({"n": 5}, None),
    ],
)
def test_read_count(value: Any, expected: int | None) -> None:
    assert read_count(value) == expected


def test_1e400_on_the_wire_is_invalid_not_an_overflow() -> None:
    # json reads 1e400 as float infinity; int(inf) was the OverflowError callers saw.
    u, state = parse_openai_usage(json.loads('{"prompt_tokens": 1e400, "completion_tokens": 3}'))
    assert state == STATE_INVALID and u.input_tokens == INVALID and u.output_tokens == 3
    u, state = parse_anthropic_usage(json.loads('{"input_tokens": 3, "output_tokens": 1e400}'))
    assert state == STATE_INVALID and u.output_tokens == INVALID and u.input_tokens == 3


@pytest.mark.parametrize("raw", [None, {}, [], "usage", {"total_tokens": 9}])
def test_no_usage_is_missing(raw: Any) -> None:
    assert parse_openai_usage(raw)[1] == STATE_MISSING
    assert parse_anthropic_usage(raw)[1] == STATE_MISSING


KW = dict(max_tokens=100, context_length=1000, prompt_estimate=40, output_estimate=7)


@pytest.mark.parametrize(
    ("usage", "state", "expected", "source"),
    [
        (Usage(30, 5, 0, 90, 10), STATE_OK, Usage(30, 5, 0, 90, 10), "provider"),
        # a few tokens over max_tokens is the provider's rounding
        (Usage(30, 0, 0, 100 + MAX_TOKENS_TOLERANCE), STATE_OK, None, "provider"),
        (
            Usage(30, 0, 0, 100 + MAX_TOKENS_TOLERANCE + 1),
            STATE_OK,
            Usage(30, 0, 0, 100),
            "clamped",
        ),
        (Usage(10**9, 0, 0, 5), STATE_OK, Usage(40, 0, 0, 5), "clamped"),  # above the context
        (Usage(600, 600, 0, 5), STATE_OK, Usage(40, 0, 0, 5), "clamped"),
        (Usage(INVALID, 0, 0, 5), STATE_INVALID, Usage(40, 0, 0, 5), "clamped"),
        (Usage(30, 0, 0, INVALID), STATE_INVALID, Usage(30, 0, 0, 7), "clamped"),
        (Usage(30, 0, 0, 5, 9), STATE_OK, Usage(30, 0, 0, 5, 5), "clamped"),
        (Usage(), STATE_MISSING, Usage(40, 0, 0, 7), "estimated"),
    ],
)
def test_bound_usage(usage: Usage, state: str, expected: Usage | None, source: str) -> None:
    got, src = bound_usage(usage, state, **KW)
    assert (got, src) == (expected or usage, source)


def test_estimates_are_bounded_too() -> None:
    big = dict(KW, prompt_estimate=10**9, output_estimate=10**9)
    got, src = bound_usage(Usage(), STATE_MISSING, **big)
    assert got == Usage(1000, 0, 0, 100) and src == "estimated"


# --------------------------------------------------------------------------- through the router

# (wire usage, provider, expected usage_source)
HOSTILE = [
    ({"prompt_tokens": 1e20, "completion_tokens": 5}, "p1", "clamped"),
    ({"prompt_tokens": math.inf, "completion_tokens": 5}, "p1", "clamped"),
    ({"prompt_tokens": 10, "completion_tokens": -math.inf}, "p1", "clamped"),
    ({"prompt_tokens": "100", "completion_tokens": "5"}, "p1", "clamped"),
    ({"prompt_tokens": -50, "completion_tokens": -1}, "p1", "clamped"),
    ({"prompt_tokens": 10.5, "completion_tokens": 5}, "p1", "clamped"),
    ({"prompt_tokens": 10, "completion_tokens": 10**9}, "p1", "clamped"),
    ({"prompt_tokens": True, "completion_tokens": 5}, "p1", "clamped"),
    (
        {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": "x"},
        "p1",
        "provider",
    ),
    (OMIT, "p1", "estimated"),
    (None, "p1", "estimated"),
    ({}, "p1", "estimated"),
    ({"input_tokens": 1e20, "output_tokens": 5}, "p2", "clamped"),
    ({"input_tokens": "x", "output_tokens": 5}, "p2", "clamped"),
    ({"input_tokens": 10, "output_tokens": -3}, "p2", "clamped"),
    ({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": -1}, "p2", "clamped"),
    ({"input_tokens": 10, "output_tokens": 10**15}, "p2", "clamped"),
    (OMIT, "p2", "estimated"),
    ("lots", "p2", "estimated"),
]


def _spent(router) -> Decimal:
    return router.guard.spent("api_key", "app", dt.datetime.now(dt.UTC))


@pytest.mark.parametrize(("wire", "provider", "source"), HOSTILE)
def test_hostile_usage_is_bounded_and_the_budget_survives_a_restart(
    small_cfg, small_fleet, make_router, logged, tmp_path, wire, provider, source
):
    cfg = small_cfg(api_keys=API_KEYS)
    small_fleet[provider].wire_usage = lambda body: wire
    router = make_router(cfg, small_fleet, clock=None, sleep=None)
    comp = router.complete(
        api_key_id="app",
        model="m/a",
        messages=MSGS,
        max_tokens=MAX_TOKENS,
        provider={"only": [provider]},
    )
    assert comp.content == "This is a fake completion."
    assert comp.usage_source == source
    (rec,) = logged(router)
    assert rec["status"] == "ok" and rec["usage_source"] == source
    u = rec["usage"]
    assert all(isinstance(v, int) and 0 <= v <= 10**12 for v in u.values())
    assert u["output_tokens"] <= MAX_TOKENS + 16
    assert u["input_tokens"] + u["cache_read_tokens"] + u["cache_write_tokens"] <= 128_000
    if source != "provider":
        assert u["input_tokens"] > 0 and u["output_tokens"] > 0  # never a silent $0
        assert Decimal(rec["cost"]["list_usd"]) > 0
    # What the caller reads is what was booked.
    assert comp.body["usage"]["completion_tokens"] == u["output_tokens"]
    cost = rec["cost"]
    total = sum(
        Decimal(cost[k]) for k in ("provider_usd", "platform_fee_usd", "platform_credits_usd")
    )
    assert total < Decimal("0.01")  # one bounded request is a fraction of a cent here
    assert _spent(router) == total

    # The budget is intact: more requests are admitted, now and after a restart.
    small_fleet[provider].wire_usage = None
    router.complete(api_key_id="app", model="m/a", messages=MSGS, max_tokens=MAX_TOKENS)
    before = _spent(router)
    router.close()
    again = make_router(cfg, small_fleet, clock=None, sleep=None, log_dir=router.log_dir)
    assert _spent(again) == before < LIMIT_USD
    again.complete(api_key_id="app", model="m/a", messages=MSGS, max_tokens=MAX_TOKENS)
    assert len(logged(again)) == 3


def _poisoned(**cost: Any) -> dict:
    c = {"list_usd": "0", "provider_usd": "0", "platform_fee_usd": "0", "platform_credits_usd": "0"}
    c.update(cost)
    return {
        "schema_version": 1,
        "request_id": "req_poison",
        "ts": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "duration_ms": 1.0,
        "api_key_id": "app",
        "member_id": None,
        "model": "m/a",
        "provider": "p1",
        "credential": "byok",
        "key_id": "k1",
        "status": "ok",
        "usage": {"input_tokens": 10**20, "output_tokens": 5},
        "cost": c,
    }


@pytest.mark.parametrize(
    "rec",
    [
        _poisoned(list_usd="208000000000000", provider_usd="208000000000000"),
        _poisoned(platform_fee_usd="1e30"),
        _poisoned(provider_usd="99999999999999999999999999999"),
        {**_poisoned(provider_usd="5000000"), "model": "gone/model", "provider": "gone"},
        {**_poisoned(platform_credits_usd="5000000"), "credential": "shared", "key_id": None},
        _poisoned(provider_usd="NaN"),
        _poisoned(provider_usd="Infinity"),
        _poisoned(provider_usd="-Infinity"),
        _poisoned(provider_usd="-500"),
        _poisoned(provider_usd=1e400),
        _poisoned(provider_usd=True),
        {**_poisoned(provider_usd="7"), "api_key_id": ["app"]},
        {**_poisoned(provider_usd="7"), "ts": "2026-11-20T12:00:00"},  # naive: not counted
    ],
)
def test_a_poisoned_log_line_cannot_exhaust_the_limit_after_a_restart(
    small_cfg, small_fleet, make_router, tmp_path, rec
):
    cfg = small_cfg(api_keys=API_KEYS)
    logs = tmp_path / "poisoned"
    day = dt.datetime.now(dt.UTC).date().isoformat()
    f = logs / "requests" / f"dt={day}" / "old-writer.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps(rec) + "\n")
    router = make_router(cfg, small_fleet, clock=None, sleep=None, log_dir=logs)
    spent = _spent(router)
    assert Decimal(0) <= spent < Decimal("1")  # at most one request's maximum on that route
    comp = router.complete(api_key_id="app", model="m/a", messages=MSGS, max_tokens=MAX_TOKENS)
    assert comp.usage_source == "provider"


def test_the_limit_still_holds_for_real_spend_after_a_restart(
    small_cfg, small_fleet, make_router, tmp_path
):
    """Bounding re-read records must not forgive real spend: ten genuine $0.15 records
    on disk exhaust a $1 limit after a restart."""
    cfg = small_cfg(api_keys=API_KEYS)
    logs = tmp_path / "real"
    day = dt.datetime.now(dt.UTC).date().isoformat()
    f = logs / "requests" / f"dt={day}" / "old-writer.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text(
        "".join(
            json.dumps({**_poisoned(provider_usd="0.15"), "request_id": f"req_{i}"}) + "\n"
            for i in range(10)
        )
    )
    router = make_router(cfg, small_fleet, clock=None, sleep=None, log_dir=logs)
    assert _spent(router) == Decimal("1.50")
    with pytest.raises(RouteError) as e:
        router.complete(api_key_id="app", model="m/a", messages=MSGS, max_tokens=MAX_TOKENS)
    assert e.value.code == 402


STREAM_HOSTILE = [
    ({"prompt_tokens": 1e20, "completion_tokens": 5}, "p1", "clamped"),
    ({"prompt_tokens": 10, "completion_tokens": math.inf}, "p1", "clamped"),
    ({"prompt_tokens": "10", "completion_tokens": -4}, "p1", "clamped"),
    ({"input_tokens": 1e20, "output_tokens": 5}, "p2", "clamped"),
    ({"input_tokens": 10, "output_tokens": "many"}, "p2", "clamped"),
    ({"input_tokens": -1, "output_tokens": 10**15}, "p2", "clamped"),
]


@pytest.mark.parametrize(("wire", "provider", "source"), STREAM_HOSTILE)
def test_hostile_usage_in_a_stream_is_bounded(
    small_cfg, small_fleet, make_router, logged, wire, provider, source
):
    import asyncio

    cfg = small_cfg(api_keys=API_KEYS)
    small_fleet[provider].wire_usage = lambda body: wire
    router = make_router(cfg, small_fleet, clock=None, sleep=None)

    async def go() -> list:
        stream = await router.astream(
            api_key_id="app",
            model="m/a",
            messages=MSGS,
            max_tokens=MAX_TOKENS,
            provider={"only": [provider]},
        )
        async with stream:
            events = [ev async for ev in stream]
        await router.aclose()
        return events

    loop = asyncio.new_event_loop()
    try:
        events = loop.run_until_complete(go())
    finally:
        loop.close()
    assert events[-1].usage_source == source
    (rec,) = logged(router)
    assert rec["status"] == "ok" and rec["usage_source"] == source and rec["stream"] is True
    u = rec["usage"]
    assert u["output_tokens"] <= MAX_TOKENS + 16 and u["input_tokens"] <= 128_000
    assert all(isinstance(v, int) and v >= 0 for v in u.values())
    cost = rec["cost"]
    total = sum(
        Decimal(cost[k]) for k in ("provider_usd", "platform_fee_usd", "platform_credits_usd")
    )
    assert 0 < total < Decimal("0.01") and _spent(router) == total
