"""Execution bounds on a small hand-made config: total deadline, Retry-After honoured only
when retrying the same (last) route, caller input errors, and log-record fidelity."""

from __future__ import annotations

import asyncio
import time

import pytest

from routing_core.router import Router
from routing_core.routes import RouteError
from routing_core.schema import Usage
from simulator.fake_providers import SHARED_LABEL

API = {
    "id": "app",
    "secret_sha256": "0" * 64,
    "environment": "prod",
    "app": "t",
    "default_workload": "w",
}


def msg(text: str = "hi") -> list[dict]:
    return [{"role": "user", "content": text}]


def error_of(fn) -> RouteError:
    with pytest.raises(RouteError) as ei:
        fn()
    return ei.value


def one_route(small_cfg, *, deadline_s=30, max_attempts=4, timeout_s=2, **router):
    """m/b has one endpoint (p1); with shared fallback off, key k1 is the only route."""
    cfg = small_cfg(
        workloads=[
            {
                "id": "w",
                "shared_fallback": False,
                "max_attempts": max_attempts,
                "deadline_s": deadline_s,
            }
        ],
        api_keys=[API],
        router=router,
    )
    if timeout_s != 2:
        data = cfg.model_dump(mode="python", exclude={"source"})
        for p in data["providers"]:
            p["timeout_s"] = timeout_s
        from routing_core.config import parse_config

        cfg = parse_config(data)
    return cfg


def test_retry_after_honoured_on_the_last_route(small_cfg, small_fleet, make_router):
    router = make_router(one_route(small_cfg), small_fleet)
    small_fleet["p1"].add_fault("rate_limit", key="k1", times=1, retry_after=2)
    c = router.complete(api_key_id="app", model="m/b", messages=msg())
    assert [a["status"] for a in c.attempts] == ["rate_limited", "ok"]
    assert [a["key_id"] for a in c.attempts] == ["k1", "k1"]
    assert router._sleep.calls == [2.0]  # waited exactly the Retry-After, no extra backoff
    assert c.fallback_used is False  # same route, not a fallback


def test_retry_after_beyond_the_cap_or_deadline_is_not_waited(small_cfg, small_fleet, make_router):
    router = make_router(one_route(small_cfg, max_retry_after_s=5), small_fleet)
    small_fleet["p1"].add_fault("rate_limit", key="k1", retry_after=30)
    e = error_of(lambda: router.complete(api_key_id="app", model="m/b", messages=msg()))
    assert e.code == 429 and router._sleep.calls == []
    assert small_fleet["p1"].count(status=None) == 1

    router = make_router(one_route(small_cfg, deadline_s=3), small_fleet)
    small_fleet.reset()
    small_fleet["p1"].add_fault("rate_limit", key="k1", retry_after=4)
    e = error_of(lambda: router.complete(api_key_id="app", model="m/b", messages=msg()))
    assert e.code == 429 and router._sleep.calls == []


def test_retry_after_not_waited_when_other_routes_remain(small_cfg, small_fleet, make_router):
    cfg = small_cfg(api_keys=[API])  # m/a: k1 (p1), k2 (p2), then shared
    router = make_router(cfg, small_fleet)
    small_fleet["p1"].add_fault("rate_limit", key="k1", retry_after=5)
    c = router.complete(api_key_id="app", model="m/a", messages=msg())
    assert [a["key_id"] for a in c.attempts] == ["k1", "k2"]
    assert all(s < 5 for s in router._sleep.calls)


def test_deadline_bounds_total_time_with_timeouts(small_cfg, small_fleet, tmp_path):
    cfg = one_route(small_cfg, deadline_s=0.6, timeout_s=0.5)
    cfg = cfg.model_copy(
        update={"workloads": [cfg.workloads[0].model_copy(update={"shared_fallback": True})]}
    )  # more routes than time
    small_fleet["p1"].add_fault("timeout", delay_s=2.0)
    small_fleet["p2"].add_fault("timeout", delay_s=2.0)
    with Router(
        cfg,
        log_dir=tmp_path,
        secrets=small_fleet.secrets,
        base_urls=small_fleet.base_urls,
        rng_seed=1,
    ) as router:
        t = time.perf_counter()
        e = error_of(lambda: router.complete(api_key_id="app", model="m/a", messages=msg()))
        took = time.perf_counter() - t
    assert e.code == 503
    # Without the deadline: 4 attempts x 0.5 s timeouts = 2 s; with it: ~0.6 s (+ slack).
    assert took < 1.2
    statuses = [a["status"] for a in e.metadata["attempts"]]
    assert 1 <= len(statuses) <= 2 and set(statuses) == {"timeout"}


def test_async_deadline_and_failover(small_cfg, small_fleet, tmp_path):
    cfg = small_cfg(api_keys=[API])
    small_fleet["p1"].add_fault("server_error", key="k1")

    async def go():
        async with Router(
            cfg,
            log_dir=tmp_path,
            secrets=small_fleet.secrets,
            base_urls=small_fleet.base_urls,
            rng_seed=1,
        ) as router:
            return await router.acomplete(api_key_id="app", model="m/a", messages=msg())

    c = asyncio.run(go())
    assert [(a["key_id"], a["http_status"]) for a in c.attempts] == [("k1", 500), ("k2", 200)]
    assert c.provider == "p2" and c.zdr is True


@pytest.mark.parametrize(
    "kw, code",
    [
        ({"model": "m/a", "messages": []}, 400),
        ({"model": "m/a", "messages": [{"content": "no role"}]}, 400),
        ({"messages": [{"role": "user", "content": "x"}]}, 400),
        ({"model": "m/a", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400),
        (
            {
                "model": "m/a",
                "messages": [{"role": "user", "content": "x"}],
                "provider": {"onyl": ["p1"]},
            },
            400,
        ),
        ({"model": "m/nope", "messages": [{"role": "user", "content": "x"}]}, 404),
        ({"models": ["m/a", None], "messages": [{"role": "user", "content": "x"}]}, 400),
        ({"model": "m/a", "messages": [{"role": "user", "content": "x"}], "workflow_id": 7}, 400),
        ({"model": "m/a", "messages": [{"role": "user", "content": "x"}], "stream": True}, 400),
    ],
)
def test_caller_errors_are_logged_and_make_no_call(
    small_cfg, small_fleet, make_router, logged, kw, code
):
    router = make_router(small_cfg(api_keys=[API]), small_fleet)
    e = error_of(lambda: router.complete(api_key_id="app", **kw))
    assert e.code == code and small_fleet.served() == []
    [rec] = logged(router)
    assert rec["error_code"] == code and rec["request_id"] == e.metadata["request_id"]


def test_provider_prefs_order_only_and_allow_fallbacks(small_cfg, small_fleet, make_router):
    router = make_router(small_cfg(api_keys=[API]), small_fleet)
    c = router.complete(
        api_key_id="app", model="m/a", messages=msg(), provider={"order": ["p2", "p1"]}
    )
    assert c.provider == "p2"
    c = router.complete(api_key_id="app", model="m/a", messages=msg(), provider={"only": ["p1"]})
    assert c.provider == "p1"
    small_fleet["p1"].add_fault("server_error")
    small_fleet["p2"].add_fault("server_error", key="k2")
    e = error_of(
        lambda: router.complete(
            api_key_id="app", model="m/a", messages=msg(), provider={"allow_fallbacks": False}
        )
    )
    assert e.code == 503
    assert all(s.key != SHARED_LABEL for s in small_fleet.served())


def test_record_matches_served_usage_and_cost(
    small_cfg, small_fleet, make_router, logged, usage_switch
):
    usage_switch.fn = lambda body: Usage(
        input_tokens=1000,
        cache_read_tokens=3000,
        cache_write_tokens=500,
        output_tokens=200,
        reasoning_tokens=0,
    )
    router = make_router(small_cfg(api_keys=[API]), small_fleet)
    c = router.complete(api_key_id="app", model="m/a", messages=msg(), provider={"order": ["p2"]})
    [served] = small_fleet["p2"].served
    assert c.usage == served.usage  # Anthropic: cache writes reported apart
    [rec] = logged(router)
    assert rec["usage"] == served.usage.as_dict()
    # p2 price: input 1, output 3 per 1M; cached_input and cache_write default to input.
    assert rec["cost"]["list_usd"] == "0.005100000"
    assert rec["upstream_model"] == "a-2" == served.model


def test_record_encoding_round_trips_awkward_caller_strings(
    small_cfg, small_fleet, make_router, logged
):
    router = make_router(small_cfg(api_keys=[API]), small_fleet)
    odd = 'quote " backslash \\ newline \n tab \t unicode é \u2028 emoji 🙂'
    router.complete(
        api_key_id="app", model="m/a", messages=msg(), idempotency_key=odd, workflow_id=odd + "-wf"
    )
    [rec] = logged(router)  # parsed with json and validated with RequestRecord
    assert rec["idempotency_key"] == odd and rec["workflow_id"] == odd + "-wf"
    assert rec["ts"].endswith("Z") and len(rec["ts"]) == 24


def test_made_up_member_ids_do_not_grow_the_caller_cache(small_cfg, small_fleet, make_router):
    """Caches keyed by caller input are bounded: one made-up member_id per request (each an
    error the router remembers) keeps the resolved-caller cache at its LRU size."""
    from routing_core.router import RESOLVED_CACHE_SIZE

    router = make_router(small_cfg(), small_fleet)
    codes = set()
    for i in range(RESOLVED_CACHE_SIZE + 500):
        try:
            router.complete(
                api_key_id="app",
                model="m/a",
                member_id=f"made-up-{i}",
                messages=[{"role": "user", "content": "x"}],
            )
        except RouteError as e:
            codes.add(e.code)
    assert codes  # an unknown member is refused (and the refusal is what gets cached)
    assert len(router._resolved) == RESOLVED_CACHE_SIZE
    # The most recent callers are the ones kept.
    assert ("app", f"made-up-{RESOLVED_CACHE_SIZE + 499}", None) in router._resolved
    assert ("app", "made-up-0", None) not in router._resolved


def test_log_refused_writes_one_record_through_the_encoder(small_cfg, small_fleet, make_router):
    """A server's own refusals (bad auth, body too big, too many in flight) are logged with
    the same encoder: the API key's fields when it is known, nothing else of the request."""
    from routing_core.request_log import read_records
    from routing_core.schema import RequestRecord

    cfg = small_cfg(
        api_keys=[
            {"id": "app", "secret_sha256": "0" * 64, "environment": "prod", "app": "t",
             "default_workload": "w"}
        ]
    )  # fmt: skip
    router = make_router(cfg, small_fleet)
    a = router.log_refused(413, "body too large", api_key_id="app", workload="nope", stream=True)
    b = router.log_refused(401, "unknown API key", api_key_id="forged\\n", workflow_id="wf")
    recs = {r["request_id"]: r for r in read_records(router.log_dir)}
    for r in recs.values():
        RequestRecord.model_validate(r)
    ra, rb = recs[a], recs[b]
    assert (ra["error_code"], ra["status"], ra["api_key_id"]) == (413, "error", "app")
    assert ra["environment"] == "prod" and ra["workload"] == "w"  # the bogus one is not logged
    assert ra["stream"] is True and ra["attempts"] == [] and ra["model"] is None
    assert rb["api_key_id"] is None and rb["environment"] is None and rb["workflow_id"] == "wf"
    assert not small_fleet["p1"].served and not small_fleet["p2"].served
