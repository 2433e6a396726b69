"""`Router.astream` against the real loopback fakes, both wire formats: normal streams (text
and tool calls, an OpenAI-form request served by an Anthropic provider and by an OpenAI
one), failover before the first event, a consumer that stops early, an upstream that drops
the connection, stalls past the deadline or omits usage. Every case: exactly one record
with the right status, error code and reason, usage and usage_source, a cost priced from
that usage, and a budget settled to it (nothing left in flight)."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from routing_core.pricing import PriceBook
from routing_core.routes import Attempt, RouteError
from routing_core.schema import Cost, Usage
from routing_core.streaming import Finish, StreamUsage, TextDelta, ToolCallDelta

LIMIT = {"usd": "5", "reset": "monthly", "include_byok": True}
API_KEYS = [
    {"id": "app", "secret_sha256": "0" * 64, "environment": "prod", "app": "t", "limit": LIMIT}
]
MSGS = [{"role": "user", "content": "Tell me about the quarterly numbers, briefly."}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a figure up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]
WIRES = {"p1": "openai", "p2": "anthropic"}


@pytest.fixture
def cfg(small_cfg):
    return small_cfg(api_keys=API_KEYS)


@pytest.fixture
def run():
    """Run coroutines on one event loop per test (the router's async client lives on it)."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


async def consume(stream, stop_after: int | None = None) -> tuple[list, Exception | None]:
    events: list = []
    err = None
    async with stream:
        try:
            async for ev in stream:
                events.append(ev)
                if stop_after is not None and len(events) >= stop_after:
                    break
        except RouteError as e:
            err = e
    return events, err


def cost_of(cfg, rec: dict) -> Cost:
    """What the record's usage costs on its route (the fee meter fresh: the first request)."""
    from routing_core.pricing import ByokFeeMeter

    a = Attempt(rec["model"], rec["provider"], rec["credential"], rec["key_id"], "")
    ts = dt.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00"))
    return PriceBook(cfg).cost(a, Usage(**rec["usage"]), ts, ByokFeeMeter.from_config(cfg))


def assert_settled(router, rec: dict) -> None:
    now = dt.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00"))
    c = rec["cost"]
    spent = sum(Decimal(c[k]) for k in ("provider_usd", "platform_fee_usd", "platform_credits_usd"))
    assert router.guard.in_flight("api_key", "app", now) == 0
    assert router.guard.spent("api_key", "app", now) == spent


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_text_stream_both_wires(cfg, small_fleet, make_router, logged, run, provider):
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app",
            model="m/a",
            messages=MSGS,
            max_tokens=64,
            provider={"only": [provider]},
        )
    )
    # The served route is known before the first event.
    assert (stream.model, stream.provider, stream.credential) == ("m/a", provider, "byok")
    events, err = run(consume(stream))
    assert err is None
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "This is a fake completion."
    assert [e for e in events if isinstance(e, Finish)] == [Finish("stop")]
    last = events[-1]
    assert isinstance(last, StreamUsage) and last.usage_source == "provider"
    (served,) = small_fleet[provider].served_ok()
    assert last.usage == served.usage
    (rec,) = logged(router)
    assert rec["status"] == "ok" and rec["error_code"] is None and rec["stream"] is True
    assert rec["usage"] == served.usage.as_dict() and rec["usage_source"] == "provider"
    assert 0 < rec["ttfb_ms"] <= rec["duration_ms"]
    assert Cost(**{k: Decimal(v) for k, v in rec["cost"].items()}) == cost_of(cfg, rec)
    assert last.cost == cost_of(cfg, rec)
    assert_settled(router, rec)
    assert stream.status == "ok" and stream.usage == served.usage


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_tool_call_stream_both_wires(small_cfg, small_fleet, make_router, logged, run, provider):
    models = [
        {
            "id": "m/a",
            "endpoints": [
                {"provider": p, "upstream_model": up, "supports": ["tools"],
                 "price": {"input": "1", "output": "2"}}
                for p, up in (("p1", "a-1"), ("p2", "a-2"))
            ],
        }
    ]  # fmt: skip
    cfg = small_cfg(api_keys=API_KEYS, models=models)
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app",
            model="m/a",
            messages=MSGS,
            tools=TOOLS,
            tool_choice="required",
            max_tokens=64,
            provider={"only": [provider]},
        )
    )
    events, err = run(consume(stream))
    assert err is None
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls[0].index == 0 and calls[0].name == "lookup" and calls[0].id
    assert all(c.index == 0 for c in calls)
    assert "".join(c.arguments for c in calls) == "{}"
    assert not [e for e in events if isinstance(e, TextDelta)]
    assert Finish("tool_calls") in events
    (rec,) = logged(router)
    assert rec["status"] == "ok" and rec["usage_source"] == "provider"
    assert rec["usage"] == small_fleet[provider].served_ok()[0].usage.as_dict()


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_upstream_asked_for_usage_and_stream(
    cfg, small_fleet, usage_switch, make_router, logged, run, provider
):
    """The upstream request asks for a stream, and (OpenAI wire) for usage in it; a caller's
    own stream flags are not passed through."""
    seen: list[dict] = []

    def spy(body: dict) -> Usage:
        seen.append(body)
        return Usage(input_tokens=12, output_tokens=7)

    usage_switch.fn = spy
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app",
            model="m/a",
            messages=MSGS,
            stream=True,
            stream_options={"include_usage": False},
            provider={"only": [provider]},
        )
    )
    run(consume(stream))
    assert seen[0]["stream"] is True
    if provider == "p1":
        assert seen[0]["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in seen[0]
    (rec,) = logged(router)
    assert rec["usage"]["input_tokens"] == 12 and rec["usage"]["output_tokens"] == 7


def test_failover_before_the_first_event(cfg, small_fleet, make_router, logged, run):
    """A 500 on the first route and an error event before any content on the second are
    both failed attempts; the third route serves the stream."""
    small_fleet["p1"].add_fault("server_error", key="k1", times=1)
    small_fleet["p2"].add_fault("stream_error", key="k2", times=1, after=0)
    router = make_router(cfg, small_fleet)
    stream = run(router.astream(api_key_id="app", model="m/a", messages=MSGS, max_tokens=64))
    events, err = run(consume(stream))
    assert err is None and isinstance(events[-1], StreamUsage)
    (rec,) = logged(router)
    assert [(a["provider"], a["key_id"], a["status"]) for a in rec["attempts"]][:2] == [
        ("p1", "k1", "error"),
        ("p2", "k2", "error"),
    ]
    assert rec["attempts"][1]["http_status"] == 200  # it broke off after a 2xx start
    assert rec["status"] == "ok" and rec["fallback_used"] is True
    assert rec["attempts"][-1]["status"] == "ok"
    assert_settled(router, rec)


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_consumer_closes_after_two_events(cfg, small_fleet, make_router, logged, run, provider):
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app",
            model="m/a",
            messages=MSGS,
            max_tokens=64,
            provider={"only": [provider]},
        )
    )
    events, err = run(consume(stream, stop_after=2))
    assert err is None and len(events) == 2
    (rec,) = logged(router)
    assert rec["status"] == "error" and rec["error_code"] == 499
    assert rec["error_reason"] == "client_closed" and rec["usage_source"] == "estimated"
    assert rec["model"] == "m/a" and rec["provider"] == provider  # served, then abandoned
    u = rec["usage"]
    assert u["input_tokens"] > 0 and u["output_tokens"] >= 1  # never a silent $0
    if provider == "p2":  # Anthropic reported the input in message_start: kept as is
        assert u["input_tokens"] == small_fleet["p2"].served_ok()[0].usage.input_tokens
    assert Decimal(rec["cost"]["list_usd"]) > 0
    assert Cost(**{k: Decimal(v) for k, v in rec["cost"].items()}) == cost_of(cfg, rec)
    assert_settled(router, rec)
    assert stream.error_reason == "client_closed"


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_upstream_drops_mid_stream(cfg, small_fleet, make_router, logged, run, provider):
    small_fleet[provider].add_fault("stream_drop", after=4)
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app",
            model="m/a",
            messages=MSGS,
            max_tokens=64,
            provider={"only": [provider]},
        )
    )
    events, err = run(consume(stream))
    assert isinstance(err, RouteError) and err.code == 502
    assert err.metadata["error_reason"] == "upstream_interrupted"
    assert err.metadata["request_id"] == stream.request_id
    assert events and all(isinstance(e, TextDelta) for e in events)  # what came before
    (rec,) = logged(router)
    assert rec["status"] == "error" and rec["error_code"] == 502
    assert rec["error_reason"] == "upstream_interrupted" and rec["usage_source"] == "estimated"
    streamed = sum(len(e.text) for e in events)
    assert rec["usage"]["output_tokens"] >= -(-streamed // 4)
    assert Decimal(rec["cost"]["list_usd"]) > 0
    assert_settled(router, rec)


def test_stall_past_the_deadline(small_cfg, small_fleet, make_router, logged, run):
    cfg = small_cfg(
        api_keys=API_KEYS, workloads=[{"id": "w", "max_attempts": 4, "deadline_s": 1.2}]
    )
    small_fleet["p1"].add_fault("stream_stall", after=3, delay_s=3)
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app",
            model="m/a",
            workload="w",
            messages=MSGS,
            max_tokens=64,
            provider={"only": ["p1"]},
        )
    )
    events, err = run(consume(stream))
    assert isinstance(err, RouteError) and err.code == 504
    (rec,) = logged(router)
    assert rec["error_code"] == 504 and rec["error_reason"] == "upstream_interrupted"
    assert rec["usage_source"] == "estimated" and rec["duration_ms"] < 3000
    assert rec["duration_ms"] >= 1100  # it waited up to the deadline (not the 3 s stall)
    assert_settled(router, rec)


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_omitted_usage_is_estimated(cfg, small_fleet, make_router, logged, run, provider):
    small_fleet[provider].add_fault("stream_omit_usage")
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app",
            model="m/a",
            messages=MSGS,
            max_tokens=64,
            provider={"only": [provider]},
        )
    )
    events, err = run(consume(stream))
    assert err is None
    last = events[-1]
    assert isinstance(last, StreamUsage) and last.usage_source == "estimated"
    (rec,) = logged(router)
    assert rec["status"] == "ok" and rec["usage_source"] == "estimated"
    assert rec["usage"]["input_tokens"] > 0 and rec["usage"]["output_tokens"] > 0
    assert Decimal(rec["cost"]["list_usd"]) > 0 and last.cost == cost_of(cfg, rec)
    assert_settled(router, rec)


def test_cancelled_consumer_task_is_client_closed(cfg, small_fleet, make_router, logged, run):
    """A client disconnect in a server is a cancelled task: one 499 record, budget settled."""
    small_fleet["p1"].add_fault("stream_stall", after=2, delay_s=3)
    router = make_router(cfg, small_fleet)

    async def scenario() -> Any:
        stream = await router.astream(
            api_key_id="app", model="m/a", messages=MSGS, max_tokens=64, provider={"only": ["p1"]}
        )

        async def reader() -> None:
            async with stream:
                async for _ in stream:
                    pass

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return stream

    stream = run(scenario())
    (rec,) = logged(router)
    assert rec["error_code"] == 499 and rec["error_reason"] == "client_closed"
    assert rec["duration_ms"] < 2000 and stream.status == "error"
    assert_settled(router, rec)


def test_dropped_without_close_still_writes_one_record(cfg, small_fleet, make_router, logged, run):
    router = make_router(cfg, small_fleet)
    stream = run(router.astream(api_key_id="app", model="m/a", messages=MSGS, max_tokens=64))
    rid = stream.request_id
    del stream
    import gc

    gc.collect()
    (rec,) = logged(router)
    assert rec["request_id"] == rid and rec["error_reason"] == "client_closed"
    assert_settled(router, rec)


def test_no_route_raises_before_streaming(cfg, small_fleet, make_router, logged, run):
    small_fleet["p1"].outage()
    small_fleet["p2"].outage()
    router = make_router(cfg, small_fleet)
    with pytest.raises(RouteError) as e:
        run(router.astream(api_key_id="app", model="m/a", messages=MSGS, max_tokens=64))
    assert e.value.code == 503
    (rec,) = logged(router)
    assert rec["status"] == "error" and rec["model"] is None and rec["stream"] is True
    assert "usage_source" not in rec
    assert_settled(router, rec)


def test_idempotent_stream_replays_without_a_provider_call(
    cfg, small_fleet, make_router, logged, run
):
    router = make_router(cfg, small_fleet)
    first = run(
        router.astream(api_key_id="app", model="m/a", messages=MSGS, idempotency_key="same-1")
    )
    ev1, _ = run(consume(first))
    again = run(
        router.astream(api_key_id="app", model="m/a", messages=MSGS, idempotency_key="same-1")
    )
    ev2, _ = run(consume(again))
    assert [e for e in ev2 if not isinstance(e, StreamUsage)][0] == TextDelta(
        "This is a fake completion."
    )
    assert "".join(e.text for e in ev1 if isinstance(e, TextDelta)) == ev2[0].text
    assert ev2[-1].usage == ev1[-1].usage
    assert len(small_fleet["p1"].served) + len(small_fleet["p2"].served) == 1
    assert len(logged(router)) == 2  # the replay has its own (zero-cost) record


def test_complete_still_refuses_stream_true(cfg, small_fleet, make_router):
    router = make_router(cfg, small_fleet)
    with pytest.raises(RouteError) as e:
        router.complete(api_key_id="app", model="m/a", messages=MSGS, stream=True)
    assert e.value.code == 400 and "astream" in e.value.message


def test_route_error_passes_through_a_contextmanager():
    """A RouteError raised inside a @contextmanager block (the gateway's, a test's) must
    arrive as itself, not as a TypeError from a frozen dataclass's __setattr__."""
    import contextlib

    @contextlib.contextmanager
    def scope():
        yield

    with pytest.raises(RouteError) as e, scope():
        raise RouteError(402, "limit")
    assert e.value.code == 402


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_a_clean_end_without_the_end_marker_is_complete(
    cfg, small_fleet, make_router, logged, run, provider
):
    """Some OpenAI-compatible servers omit `data: [DONE]`: a body that ends cleanly after
    the finish reason is a finished stream, not an interrupted one."""
    small_fleet[provider].add_fault("stream_no_end")
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app",
            model="m/a",
            messages=MSGS,
            max_tokens=64,
            provider={"only": [provider]},
        )
    )
    events, err = run(consume(stream))
    assert err is None and isinstance(events[-1], StreamUsage)
    (rec,) = logged(router)
    assert rec["status"] == "ok" and rec["usage_source"] == "provider"


def test_a_body_cut_before_the_finish_is_interrupted(cfg, small_fleet, make_router, logged, run):
    # events: the role chunk (no content), "This", " is", then the cut: after the first
    # content reached the consumer, so it is not failed over.
    small_fleet["p1"].add_fault("stream_drop", after=3)
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app", model="m/a", messages=MSGS, max_tokens=64, provider={"only": ["p1"]}
        )
    )
    events, err = run(consume(stream))
    assert err is not None and err.code == 502
    assert [e.text for e in events] == ["This", " is"]
    (rec,) = logged(router)
    assert rec["error_reason"] == "upstream_interrupted" and len(rec["attempts"]) == 1


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"api_key_id": "nobody"}, 401),
        ({"api_key_id": "app", "max_tokens": -1}, 400),
        ({"api_key_id": "app", "max_tokens": 10**9}, 402),  # the hold exceeds the $5 limit
    ],
)
def test_policy_failures_of_a_stream_are_logged_as_streams(
    cfg, small_fleet, make_router, logged, run, kw, code
):
    router = make_router(cfg, small_fleet)
    with pytest.raises(RouteError) as e:
        run(router.astream(model="m/a", messages=MSGS, **kw))
    assert e.value.code == code
    (rec,) = logged(router)
    assert rec["error_code"] == code and rec["stream"] is True and rec["attempts"] == []
    assert not small_fleet["p1"].served and not small_fleet["p2"].served


def test_a_cut_before_any_content_fails_over(cfg, small_fleet, make_router, logged, run):
    """Cut after the role chunk only: nothing reached the consumer, so the next route serves."""
    small_fleet["p1"].add_fault("stream_drop", key="k1", after=1)
    router = make_router(cfg, small_fleet)
    stream = run(
        router.astream(
            api_key_id="app", model="m/a", messages=MSGS, max_tokens=64, provider={"only": ["p1"]}
        )
    )
    events, err = run(consume(stream))
    assert err is None and isinstance(events[-1], StreamUsage)
    (rec,) = logged(router)
    assert [a["status"] for a in rec["attempts"]] == ["connect_error", "ok"]
    assert rec["credential"] == "shared" and rec["status"] == "ok"


def test_concurrent_streams_against_one_limit(small_cfg, small_fleet, make_router, logged, run):
    """60 concurrent streams on one API key limit, a third closed early and a third cut
    upstream: one record each, settled spend = the records' costs <= the limit, and
    nothing left in flight."""
    limit = Decimal("0.002")
    cfg = small_cfg(
        api_keys=[
            {"id": "app", "secret_sha256": "0" * 64, "environment": "prod", "app": "t",
             "limit": {"usd": str(limit), "reset": "monthly", "include_byok": True}}
        ]
    )  # fmt: skip
    small_fleet["p2"].add_fault("stream_drop", after=5, every=2)
    router = make_router(cfg, small_fleet)

    async def one(i: int) -> str:
        try:
            stream = await router.astream(
                api_key_id="app",
                model="m/a",
                messages=MSGS,
                max_tokens=64,
                provider={"only": ["p1" if i % 3 else "p2"]},
            )
        except RouteError as e:
            return str(e.code)
        async with stream:
            try:
                n = 0
                async for _ in stream:
                    n += 1
                    if i % 3 == 1 and n == 2:
                        break  # the client goes away
                    await asyncio.sleep(0)
            except RouteError as e:
                return str(e.code)
        return stream.status or "?"

    async def all_of() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(60)))

    outcomes = run(all_of())
    recs = logged(router)
    assert len(recs) == 60
    assert "402" in outcomes and "ok" in outcomes  # the limit bit, and streams were served
    codes = {r["error_code"] for r in recs}
    assert {499, 402} <= codes, codes
    now = dt.datetime.now(dt.UTC)
    spent = sum(
        Decimal(r["cost"][k])
        for r in recs
        for k in ("provider_usd", "platform_fee_usd", "platform_credits_usd")
    )
    assert router.guard.spent("api_key", "app", now) == spent <= limit
    assert router.guard.in_flight("api_key", "app", now) == 0
    for r in recs:
        if r["model"] is not None:  # served (finished or cut short): priced usage
            assert r["usage_source"] in ("provider", "estimated")
            assert Decimal(r["cost"]["list_usd"]) > 0


# --------------------------------------------------------------------------- sync streams


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_sync_stream_both_wires(cfg, small_fleet, make_router, logged, provider):
    router = make_router(cfg, small_fleet)
    with router.stream(
        api_key_id="app", model="m/a", messages=MSGS, max_tokens=64, provider={"only": [provider]}
    ) as stream:
        assert stream.provider == provider
        events = list(stream)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == (
        "This is a fake completion."
    )
    assert isinstance(events[-1], StreamUsage) and events[-1].usage_source == "provider"
    (rec,) = logged(router)
    assert rec["status"] == "ok" and rec["stream"] is True and rec["ttfb_ms"] > 0
    assert rec["usage"] == small_fleet[provider].served_ok()[0].usage.as_dict()
    assert_settled(router, rec)


@pytest.mark.parametrize(
    ("fault", "stop_after", "code", "reason", "source"),
    [
        (None, 2, 499, "client_closed", "estimated"),
        ({"kind": "stream_drop", "after": 4}, None, 502, "upstream_interrupted", "estimated"),
        ({"kind": "stream_omit_usage"}, None, None, None, "estimated"),
    ],
)
def test_sync_stream_ends(
    cfg, small_fleet, make_router, logged, fault, stop_after, code, reason, source
):
    if fault:
        small_fleet["p1"].add_fault(fault.pop("kind"), **fault)
    router = make_router(cfg, small_fleet)
    events, err = [], None
    with router.stream(
        api_key_id="app", model="m/a", messages=MSGS, max_tokens=64, provider={"only": ["p1"]}
    ) as stream:
        try:
            for ev in stream:
                events.append(ev)
                if stop_after and len(events) >= stop_after:
                    break
        except RouteError as e:
            err = e
    (rec,) = logged(router)
    assert rec["error_code"] == code and rec.get("error_reason") == reason
    assert rec["usage_source"] == source and Decimal(rec["cost"]["list_usd"]) > 0
    if code == 502:
        assert err is not None and err.code == 502
    assert_settled(router, rec)


def test_sync_stream_fails_over_before_the_first_event(cfg, small_fleet, make_router, logged):
    small_fleet["p1"].add_fault("stream_error", key="k1", after=0)
    router = make_router(cfg, small_fleet)
    with router.stream(
        api_key_id="app", model="m/a", messages=MSGS, max_tokens=64, provider={"only": ["p1"]}
    ) as stream:
        events = list(stream)
    assert isinstance(events[-1], StreamUsage)
    (rec,) = logged(router)
    assert [a["status"] for a in rec["attempts"]] == ["error", "ok"]
    assert rec["attempts"][0]["http_status"] == 200 and rec["credential"] == "shared"


def test_sync_stream_stall_is_bounded(small_cfg, small_fleet, make_router, logged):
    cfg = small_cfg(
        api_keys=API_KEYS, workloads=[{"id": "w", "max_attempts": 4, "deadline_s": 1.2}]
    )
    small_fleet["p1"].add_fault("stream_stall", after=3, delay_s=3)
    router = make_router(cfg, small_fleet)
    stream = router.stream(
        api_key_id="app",
        model="m/a",
        workload="w",
        messages=MSGS,
        max_tokens=64,
        provider={"only": ["p1"]},
    )
    with pytest.raises(RouteError) as e, stream:
        for _ in stream:
            pass
    assert e.value.code == 504
    (rec,) = logged(router)
    assert rec["error_reason"] == "upstream_interrupted" and 1100 <= rec["duration_ms"] < 3000
    assert_settled(router, rec)
