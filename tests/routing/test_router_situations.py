"""Routing situations of SPEC §5 / §5a executed end to end: Router.complete over real
loopback fake providers (acme config), checked against what the fakes actually served
and against the request record written for the call."""

from __future__ import annotations

import asyncio

import pytest

from routing_core.request_log import read_records
from routing_core.routes import RouteError
from routing_core.schema import OutcomeEvent, Usage
from simulator.fake_providers import SHARED_LABEL


def msg(text: str = "hello there") -> list[dict]:
    return [{"role": "user", "content": text}]


def served_keys(fleet, provider=None):
    return [(s.provider, s.key) for s in fleet.served() if provider in (None, s.provider)]


def route_of(a: dict) -> tuple[str, str]:
    return a["provider"], a["key_id"] or SHARED_LABEL


def error_of(fn) -> RouteError:
    with pytest.raises(RouteError) as ei:
        fn()
    return ei.value


def test_one_eligible_key_serves_and_record_carries_account(logged, acme_router, fleet):
    c = acme_router.complete(
        api_key="demo-secret-public-chat-prod", model="openai/gpt-4.1", messages=msg()
    )
    assert (c.provider, c.credential, c.key_id) == ("openai", "byok", "oai-prod-primary")
    assert c.content == "This is a fake completion." and c.body["model"] == "openai/gpt-4.1"
    assert served_keys(fleet) == [("openai", "oai-prod-primary")]
    [rec] = logged(acme_router)
    assert rec["status"] == "ok" and rec["api_key_id"] == "public-chat-prod"
    assert rec["environment"] == "prod" and rec["workload"] == "public-chat"
    assert rec["account"] == {"project_id": "proj_acme_prod", "api_key_id": "key_prod_primary"}
    assert rec["usage"] == {
        "input_tokens": 20,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "output_tokens": 10,
        "reasoning_tokens": 0,
    }
    # gpt-4.1: 20 in * $2/M + 10 out * $8/M = $0.00012, billed to the BYOK account.
    assert rec["cost"]["list_usd"] == "0.000120000"
    assert rec["cost"]["provider_usd"] == "0.000120000"
    assert rec["cost"]["platform_credits_usd"] == "0.000000000"
    assert rec["fallback_used"] is False and rec["zdr"] is False
    assert "demo-secret" not in str(rec) and "fake-acme" not in str(rec)


def test_rate_limited_key_then_backup_key_then_shared(logged, acme_router, fleet):
    oai = fleet["openai"]
    oai.add_fault("rate_limit", key="oai-prod-primary", retry_after=3)
    oai.add_fault("rate_limit", key="oai-prod-backup", retry_after=3)
    c = acme_router.complete(api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg())
    assert c.credential == "shared" and c.key_id is None
    assert served_keys(fleet) == [
        ("openai", "oai-prod-primary"),
        ("openai", "oai-prod-backup"),
        ("openai", SHARED_LABEL),
    ]
    assert [a["status"] for a in c.attempts] == ["rate_limited", "rate_limited", "ok"]
    [rec] = logged(acme_router)
    assert rec["fallback_used"] is True and rec["fallback_reason"] == "rate_limited"
    assert rec["credential"] == "shared" and rec["account"] == {}
    assert rec["cost"]["provider_usd"] == "0.000000000"
    assert rec["cost"]["platform_credits_usd"] == "0.000126600"  # list + 5.5% markup
    # Retry-After was not waited for: other routes were left.
    assert all(s < 3 for s in acme_router._sleep.calls)

    # The limited keys rest: the next request goes straight to shared capacity.
    plan = acme_router.plan(api_key_id="public-chat-prod", model="openai/gpt-4.1")
    assert {(e.key_id, e.reason) for e in plan.excluded} >= {
        ("oai-prod-primary", "key_cooling_down"),
        ("oai-prod-backup", "key_cooling_down"),
    }
    c2 = acme_router.complete(api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg())
    assert [route_of(a) for a in c2.attempts] == [("openai", SHARED_LABEL)]


def test_strict_byok_fails_with_429_instead_of_using_shared(logged, acme_router, fleet):
    for pid in ("anthropic", "bedrock"):
        fleet[pid].add_fault("rate_limit")
    e = error_of(
        lambda: acme_router.complete(
            api_key_id="legal-prod", model="anthropic/claude-opus-4.1", messages=msg()
        )
    )
    assert e.code == 429
    assert all(key != SHARED_LABEL for _, key in served_keys(fleet))
    [rec] = logged(acme_router)
    assert rec["status"] == "error" and rec["error_code"] == 429
    assert 1 <= len(rec["attempts"]) <= 3  # legal-review max_attempts
    assert all(a["credential"] == "byok" for a in rec["attempts"])
    assert e.to_dict()["error"]["metadata"]["attempts"] == rec["attempts"]


def test_strict_byok_with_no_usable_key_is_404_not_shared(logged, acme_router, fleet):
    acme_router.cool_down("ant-legal-zdr", 600)
    acme_router.cool_down("bedrock-prod", 600)
    e = error_of(
        lambda: acme_router.complete(
            api_key_id="legal-prod", model="anthropic/claude-opus-4.1", messages=msg()
        )
    )
    assert e.code == 404
    reasons = {(x["credential"], x["reason"]) for x in e.metadata["excluded"]}
    assert ("shared", "strict_byok") in reasons and ("byok", "key_cooling_down") in reasons
    assert fleet.served() == []
    [rec] = logged(acme_router)
    assert rec["error_code"] == 404 and rec["attempts"] == []


def test_zdr_only_served_by_zdr_routes_and_fails_safely(logged, acme_router, fleet):
    c = acme_router.complete(
        api_key_id="finance-prod", model="anthropic/claude-sonnet-4", messages=msg()
    )
    assert c.zdr is True
    assert logged(acme_router)[0]["zdr"] is True
    # Now every ZDR route fails: the request fails, nothing non-ZDR is tried.
    fleet.reset()
    fleet["anthropic"].outage()
    fleet["bedrock"].outage()
    e = error_of(
        lambda: acme_router.complete(
            api_key_id="finance-prod", model="anthropic/claude-sonnet-4", messages=msg()
        )
    )
    assert e.code == 503
    assert set(served_keys(fleet)) <= {("anthropic", "ant-legal-zdr"), ("bedrock", "bedrock-prod")}
    assert served_keys(fleet)  # it did try


def test_model_fallback_on_context_length(logged, acme_router, fleet):
    fleet["openai"].add_fault("context_length", model="gpt-4o-mini-2024-07-18")
    c = acme_router.complete(
        api_key_id="public-chat-prod", model="openai/gpt-4o-mini", messages=msg()
    )
    assert c.model == "openai/gpt-4.1-mini"  # public-chat's first model fallback
    assert [a["status"] for a in c.attempts] == ["context_length", "ok"]
    # The other routes of the too-small model were skipped, not tried.
    assert [(s.model, s.status) for s in fleet.served()] == [
        ("gpt-4o-mini-2024-07-18", 400),
        ("gpt-4.1-mini-2025-04-14", 200),
    ]
    [rec] = logged(acme_router)
    assert rec["fallback_used"] is True and rec["fallback_reason"] == "model_fallback"
    assert rec["requested_models"] == ["openai/gpt-4o-mini"]
    assert rec["model"] == "openai/gpt-4.1-mini"
    assert rec["upstream_model"] == "gpt-4.1-mini-2025-04-14"


def test_revoked_key_cools_down_and_is_skipped_next_request(
    clock, logged, acme_cfg, fleet, make_router
):
    router = make_router(acme_cfg, fleet, clock=clock)
    fleet["openai"].revoke("oai-prod-primary")
    c = router.complete(api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg())
    assert [(a["key_id"], a["status"], a["http_status"]) for a in c.attempts] == [
        ("oai-prod-primary", "auth_error", 401),
        ("oai-prod-backup", "ok", 200),
    ]
    c = router.complete(api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg())
    assert [a["key_id"] for a in c.attempts] == ["oai-prod-backup"]
    clock.advance(acme_cfg.router.cooldown_s + 1)  # cooldown over: tried again
    c = router.complete(api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg())
    assert [a["key_id"] for a in c.attempts] == ["oai-prod-primary", "oai-prod-backup"]
    recs = logged(router)
    assert [r["fallback_reason"] for r in recs] == ["auth_error", None, "auth_error"]


def test_outage_moves_to_next_provider(logged, acme_router, fleet):
    fleet["anthropic"].outage()
    c = acme_router.complete(
        api_key_id="public-chat-prod", model="anthropic/claude-sonnet-4", messages=msg()
    )
    assert (c.provider, c.key_id) == ("bedrock", "bedrock-prod")
    assert [(a["provider"], a["http_status"]) for a in c.attempts] == [
        ("anthropic", 529),
        ("anthropic", 529),
        ("bedrock", 200),
    ]
    assert logged(acme_router)[0]["fallback_reason"] == "provider_error"


def test_max_attempts_bounds_the_attempts(logged, acme_router, fleet):
    for fp in fleet.providers.values():
        fp.outage()
    e = error_of(
        lambda: acme_router.complete(
            api_key_id="batch-prod", model="openai/gpt-4.1", messages=msg()
        )
    )
    assert e.code == 503
    [rec] = logged(acme_router)
    assert len(rec["attempts"]) == 6  # batch workload max_attempts
    assert len(fleet.served()) == 6
    # Exponential backoff with jitter between attempts, within base * 2^(n-1), capped.
    sleeps = acme_router._sleep.calls
    assert len(sleeps) == 5
    assert all(0 <= s <= min(2.0, 0.05 * 2**i) for i, s in enumerate(sleeps))


def test_all_rate_limited_is_429_and_mixed_failure_is_502(acme_router, fleet):
    oai = fleet["openai"]
    oai.revoke("oai-prod-primary")
    oai.add_fault("rate_limit", key="oai-prod-backup", retry_after=None)
    oai.add_fault("server_error", key=SHARED_LABEL)
    e = error_of(
        lambda: acme_router.complete(
            api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg()
        )
    )
    assert e.code == 502


def test_bad_request_is_not_failed_over(acme_router, fleet):
    fleet["openai"].add_fault("bad_request")
    e = error_of(
        lambda: acme_router.complete(
            api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg()
        )
    )
    assert e.code == 400 and "rejected the request" in e.message
    assert len(fleet.served()) == 1


def test_environment_separation_dev_never_uses_prod_keys(acme_router, fleet):
    fleet["openai"].add_fault("server_error", key="oai-nonprod")
    c = acme_router.complete(api_key_id="sandbox-dev", model="openai/gpt-4o-mini", messages=msg())
    assert c.credential == "shared"
    assert served_keys(fleet) == [("openai", "oai-nonprod"), ("openai", SHARED_LABEL)]


def test_budget_checked_before_any_provider_call(logged, acme_router, fleet):
    # sandbox guardrail: $5/day. 10M output tokens of gpt-4o-mini could cost $6+.
    e = error_of(
        lambda: acme_router.complete(
            api_key_id="sandbox-dev",
            model="openai/gpt-4o-mini",
            messages=msg(),
            max_tokens=10_000_000,
        )
    )
    assert e.code == 402 and e.metadata["scope"] == "guardrail:sandbox"
    assert fleet.served() == []
    [rec] = logged(acme_router)
    assert rec["error_code"] == 402 and rec["member_id"] == "dan"


def test_unknown_api_key_is_401_and_logged_without_the_secret(logged, acme_router, fleet):
    e = error_of(
        lambda: acme_router.complete(api_key="not-a-key", model="openai/gpt-4.1", messages=msg())
    )
    assert e.code == 401
    [rec] = logged(acme_router)
    assert rec["api_key_id"] is None and rec["error_code"] == 401
    assert "not-a-key" not in str(rec)


def test_guardrail_block_is_403(acme_router, fleet):
    e = error_of(
        lambda: acme_router.complete(
            api_key_id="sandbox-dev", model="anthropic/claude-opus-4.1", messages=msg()
        )
    )
    assert e.code == 403 and fleet.served() == []


def test_missing_secret_fails_that_route_without_a_call(acme_cfg, fleet, make_router, tmp_path):
    secrets = dict(fleet.secrets)
    del secrets["ACME_OPENAI_PROD_KEY"]
    from routing_core.router import Router

    with Router(
        acme_cfg,
        log_dir=tmp_path / "l2",
        secrets=secrets,
        base_urls=fleet.base_urls,
        sleep=lambda s: None,
    ) as router:
        c = router.complete(api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg())
    assert c.key_id == "oai-prod-backup"
    assert c.attempts[0]["error_type"] == "missing_secret"
    assert c.attempts[0]["http_status"] is None
    assert served_keys(fleet) == [("openai", "oai-prod-backup")]


def test_idempotency_key_returns_stored_result_without_second_call(
    clock, logged, acme_cfg, fleet, make_router
):
    router = make_router(acme_cfg, fleet, clock=clock)
    kw = dict(
        api_key_id="public-chat-prod",
        model="openai/gpt-4.1",
        messages=msg(),
        idempotency_key="job-42",
    )
    c1 = router.complete(**kw)
    c2 = router.complete(**kw)
    assert fleet["openai"].count() == 1
    assert c2.replayed and c2.request_id == c1.request_id and c2.body == c1.body
    # Another API key with the same idempotency key is a different request.
    router.complete(**{**kw, "api_key_id": "assistant-prod", "model": "openai/gpt-4.1"})
    assert fleet["openai"].count() == 2
    clock.advance(acme_cfg.router.idempotency_ttl_s + 1)  # TTL over: served again
    router.complete(**kw)
    assert fleet["openai"].count() == 3
    recs = logged(router)
    assert len(recs) == 4  # one record per call
    replay = recs[1]
    assert replay["attempts"] == [] and replay["cost"]["list_usd"] == "0.000000000"
    assert replay["idempotency_key"] == "job-42"


def test_async_acomplete_same_semantics(logged, acme_cfg, fleet, make_router):
    router = make_router(acme_cfg, fleet)
    fleet["openai"].add_fault("rate_limit", key="oai-prod-primary")

    async def go():
        try:
            return await asyncio.gather(
                *[
                    router.acomplete(
                        api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg()
                    )
                    for _ in range(5)
                ]
            )
        finally:
            await router.aclose()

    results = asyncio.run(go())
    assert all(c.key_id in ("oai-prod-backup", None) for c in results)
    recs = list(read_records(router.log_dir))
    assert len(recs) == 5 and all(r["status"] == "ok" for r in recs)


def test_record_outcome_events(logged, acme_router, fleet):
    c = acme_router.complete(
        api_key_id="public-chat-prod", model="openai/gpt-4.1", messages=msg(), workflow_id="wf-1"
    )
    eid = acme_router.record_outcome(request_id=c.request_id, accepted=True, score=0.9)
    acme_router.record_outcome(workflow_id="wf-1", accepted=False, reason="user rejected")
    events = list(read_records(acme_router.log_dir, "outcomes"))
    for ev in events:
        OutcomeEvent.model_validate(ev)
    assert [e["event_id"] for e in events][0] == eid
    assert events[0]["request_id"] == c.request_id and events[1]["workflow_id"] == "wf-1"
    with pytest.raises(ValueError):
        acme_router.record_outcome(accepted=True)


def test_coding_agent_tools_round_trip_through_anthropic(logged, acme_router, fleet):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "read",
                "parameters": {"type": "object"},
            },
        }
    ]
    c = acme_router.complete(
        api_key_id="coding-agent-prod",
        model="anthropic/claude-sonnet-4",
        messages=[
            {"role": "system", "content": "you are a coder"},
            {"role": "user", "content": "open main.py"},
        ],
        tools=tools,
        tool_choice="required",
    )
    assert (c.provider, c.key_id) == ("anthropic", "ant-prod-primary")
    assert c.body["choices"][0]["finish_reason"] == "tool_calls"
    assert c.message["tool_calls"][0]["function"]["name"] == "read_file"
    # A request with tools is never planned onto an endpoint without tool support.
    plan = acme_router.plan(
        api_key_id="public-chat-prod", model="meta-llama/llama-3.3-70b-instruct", tools=tools
    )
    llama = [a for a in plan.attempts if a.model == "meta-llama/llama-3.3-70b-instruct"]
    assert llama and all(a.provider == "vertex" for a in llama)
    assert {(e.provider, e.reason) for e in plan.excluded} >= {("deepinfra", "missing_capability")}
    assert logged(acme_router)[0]["workload"] == "coding-agent"


def test_concurrent_duplicates_of_an_idempotency_key_make_one_call(
    logged, acme_cfg, fleet, make_router, usage_switch
):
    import threading
    import time

    def slow(body):
        time.sleep(0.3)  # keep the first call in flight while the duplicates arrive
        return Usage(input_tokens=20, output_tokens=10)

    usage_switch.fn = slow
    router = make_router(acme_cfg, fleet)
    results = []

    def call():
        results.append(
            router.complete(
                api_key_id="public-chat-prod",
                model="openai/gpt-4.1",
                messages=msg(),
                idempotency_key="dup-1",
            )
        )

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fleet["openai"].count() == 1
    assert sorted(c.replayed for c in results) == [False] + [True] * 5
    assert len({c.request_id for c in results}) == 1
    assert len(logged(router)) == 6


def test_duplicate_after_a_failed_original_runs_again(acme_router, fleet):
    fleet["openai"].add_fault("bad_request", times=1)
    kw = dict(
        api_key_id="public-chat-prod",
        model="openai/gpt-4.1",
        messages=msg(),
        idempotency_key="dup-2",
    )
    with pytest.raises(RouteError):
        acme_router.complete(**kw)
    c = acme_router.complete(**kw)  # errors are not stored: the retry is served
    assert not c.replayed and fleet["openai"].count() == 1


def test_async_duplicates_of_an_idempotency_key_make_one_call(
    acme_cfg, fleet, make_router, usage_switch
):
    import time

    def slow(body):
        time.sleep(0.2)
        return Usage(input_tokens=20, output_tokens=10)

    usage_switch.fn = slow
    router = make_router(acme_cfg, fleet)

    async def go():
        try:
            return await asyncio.gather(
                *[
                    router.acomplete(
                        api_key_id="public-chat-prod",
                        model="openai/gpt-4.1",
                        messages=msg(),
                        idempotency_key="dup-async",
                    )
                    for _ in range(4)
                ]
            )
        finally:
            await router.aclose()

    results = asyncio.run(go())
    assert fleet["openai"].count() == 1
    assert sorted(c.replayed for c in results) == [False, True, True, True]


def test_a_request_may_name_its_app_in_the_record(logged, acme_router, fleet):
    """`app=` (the gateway's X-Title / HTTP-Referer) is the record's app instead of the
    API key's configured one once the caller resolved, served or refused (403 here);
    streams too. An empty app is a 400, logged before the caller resolved (app null)."""
    kw = dict(api_key="demo-secret-public-chat-prod", model="openai/gpt-4.1", messages=msg())
    acme_router.complete(**kw)
    acme_router.complete(app="checkout-bot", **kw)
    with acme_router.stream(app="stream-bot", **kw) as s:
        list(s)
    assert error_of(lambda: acme_router.complete(app="", **kw)).code == 400
    blocked = error_of(
        lambda: acme_router.complete(
            api_key_id="sandbox-dev",
            model="anthropic/claude-opus-4.1",
            messages=msg(),
            app="sandbox-tool",
        )
    )
    assert blocked.code == 403
    recs = logged(acme_router)
    configured = recs[0]["app"]
    assert configured and configured != "checkout-bot"
    assert [r["app"] for r in recs[1:]] == ["checkout-bot", "stream-bot", None, "sandbox-tool"]
    assert recs[2]["stream"] is True and recs[3]["error_code"] == 400
