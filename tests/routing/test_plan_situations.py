"""Plan-level tests of every routing situation of SPEC §5 / §5a, against the acme example
config and small hand-made configs."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from routing_core.config import load_config, parse_config
from routing_core.planning import Planner
from routing_core.routes import Plan, RouteRequest

ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "ledger.yaml"
SHA = "0" * 64
DAY = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def acme() -> Planner:
    return Planner(load_config(ACME))


def base() -> dict:
    """Two providers, two models, one API key, no keys: the smallest routable config."""
    return {
        "providers": [
            {
                "id": "p1",
                "api": "openai",
                "base_url": "http://127.0.0.1:1",
                "invoice_format": "focus",
                "data_collection": "deny",
            },
            {
                "id": "p2",
                "api": "openai",
                "base_url": "http://127.0.0.1:2",
                "invoice_format": "focus",
                "data_collection": "deny",
            },
        ],
        "models": [
            {
                "id": "m1",
                "endpoints": [
                    {
                        "provider": "p1",
                        "upstream_model": "m1-up-p1",
                        "price": {"input": "1", "output": "2"},
                        "supports": ["tools"],
                    },
                    {
                        "provider": "p2",
                        "upstream_model": "m1-up-p2",
                        "price": {"input": "3", "output": "4"},
                        "supports": ["tools", "json"],
                    },
                ],
            },
            {
                "id": "m2",
                "endpoints": [
                    {
                        "provider": "p1",
                        "upstream_model": "m2-up",
                        "price": {"input": "1", "output": "1"},
                    },
                ],
            },
        ],
        "shared_capacity": {"providers": ["p1", "p2"]},
        "byok_keys": [],
        "api_keys": [
            {"id": "a1", "secret_sha256": SHA, "environment": "prod", "app": "x"},
            {"id": "a2", "secret_sha256": SHA, "environment": "dev", "app": "y"},
        ],
        "members": [{"id": "alice"}, {"id": "bob"}],
    }


def key(kid: str, provider: str = "p1", **kw) -> dict:
    return {
        "id": kid,
        "provider": provider,
        "secret_env": f"ENV_{kid.upper().replace('-', '_')}",
        **kw,
    }


def planner(data: dict) -> Planner:
    return Planner(parse_config(copy.deepcopy(data)))


def req(api: str = "a1", *models: str, **kw) -> RouteRequest:
    return RouteRequest(api_key_id=api, models=models or ("m1",), at=DAY, **kw)


def route(plan: Plan) -> list[tuple[str, str, str, str | None]]:
    return [(a.model, a.provider, a.credential, a.key_id) for a in plan.attempts]


def reasons(plan: Plan) -> dict[tuple[str, str | None, str | None, str | None], str]:
    return {(e.model, e.provider, e.credential, e.key_id): e.reason for e in plan.excluded}


# --------------------------------------------------------------------------- ordering


def test_one_eligible_byok_key_then_shared_cheapest_provider_first() -> None:
    d = base()
    d["byok_keys"] = [key("k1", "p2")]
    plan = planner(d).plan(req())
    assert plan.error is None
    # BYOK beats provider price order: the p2 key (dearer provider) comes before shared p1.
    assert route(plan) == [
        ("m1", "p2", "byok", "k1"),
        ("m1", "p1", "shared", None),
        ("m1", "p2", "shared", None),
    ]
    a = plan.attempts[0]
    assert (a.tier, a.upstream_model) == ("prioritized", "m1-up-p2")


def test_several_keys_in_priority_order_ties_by_id() -> None:
    d = base()
    d["byok_keys"] = [key("kc", order=2), key("kb", order=1), key("ka", order=1)]
    plan = planner(d).plan(req(provider_only=("p1",)))
    assert [a.key_id for a in plan.attempts] == ["ka", "kb", "kc", None]


def test_prioritized_then_shared_then_fallback_tier() -> None:
    d = base()
    d["byok_keys"] = [
        key("fb", "p1", tier="fallback", order=0),
        key("pr1", "p1", order=5),
        key("pr2", "p2", order=0),
    ]
    plan = planner(d).plan(req())
    assert [(a.tier, a.key_id, a.provider) for a in plan.attempts] == [
        ("prioritized", "pr1", "p1"),  # cheaper provider first among prioritized keys
        ("prioritized", "pr2", "p2"),
        ("shared", None, "p1"),
        ("shared", None, "p2"),
        ("fallback", "fb", "p1"),
    ]


def test_provider_order_overrides_price_but_not_byok_first() -> None:
    d = base()
    d["byok_keys"] = [key("k1", "p1")]
    plan = planner(d).plan(req(provider_order=("p2",)))
    assert route(plan) == [
        ("m1", "p1", "byok", "k1"),
        ("m1", "p2", "shared", None),
        ("m1", "p1", "shared", None),
    ]


def test_acme_public_chat_keys_then_shared_then_model_fallbacks(acme: Planner) -> None:
    plan = acme.plan(req("public-chat-prod", "anthropic/claude-sonnet-4"))
    assert plan.error is None
    assert route(plan)[:4] == [
        ("anthropic/claude-sonnet-4", "anthropic", "byok", "ant-prod-primary"),
        ("anthropic/claude-sonnet-4", "anthropic", "byok", "ant-prod-backup"),
        ("anthropic/claude-sonnet-4", "bedrock", "byok", "bedrock-prod"),
        ("anthropic/claude-sonnet-4", "anthropic", "shared", None),
    ]
    models = [a.model for a in plan.attempts]
    # Model fallbacks of the workload, in order, after every route of the primary model.
    firsts = list(dict.fromkeys(models))
    assert firsts == ["anthropic/claude-sonnet-4", "openai/gpt-4.1-mini", "google/gemini-2.5-flash"]
    assert (plan.max_attempts, plan.deadline_s) == (5, 30)


def test_request_fallbacks_come_before_workload_fallbacks_and_dedupe(acme: Planner) -> None:
    plan = acme.plan(
        req("public-chat-prod", "openai/gpt-4o-mini", "google/gemini-2.5-flash", "openai/o4-mini")
    )
    firsts = list(dict.fromkeys(a.model for a in plan.attempts))
    assert firsts == [
        "openai/gpt-4o-mini",
        "google/gemini-2.5-flash",
        "openai/o4-mini",
        "openai/gpt-4.1-mini",
    ]


# --------------------------------------------------------------------------- strict / shared


def test_strict_byok_never_yields_shared(acme: Planner) -> None:
    plan = acme.plan(req("legal-prod", "anthropic/claude-opus-4.1"))
    assert plan.attempts and all(a.credential == "byok" for a in plan.attempts)
    r = reasons(plan)
    assert r[("anthropic/claude-opus-4.1", "anthropic", "shared", None)] == "strict_byok"


def test_strict_byok_with_no_key_fails_with_404_not_shared() -> None:
    d = base()
    d["workloads"] = [{"id": "w", "byok": "strict"}]
    plan = planner(d).plan(req(workload="w"))
    assert plan.attempts == ()
    assert plan.error is not None and plan.error.code == 404
    ex = plan.error.metadata["excluded"]
    assert {e["reason"] for e in ex} == {"strict_byok"}
    assert len(ex) == 2


def test_strict_byok_still_uses_fallback_tier_keys() -> None:
    d = base()
    d["byok_keys"] = [key("fb", tier="fallback")]
    d["workloads"] = [{"id": "w", "byok": "strict"}]
    plan = planner(d).plan(req(workload="w"))
    assert route(plan) == [("m1", "p1", "byok", "fb")]


@pytest.mark.parametrize(
    ("workload", "kw"),
    [
        ({"id": "w", "shared_fallback": False}, {"workload": "w"}),
        (None, {"allow_fallbacks": False}),
    ],
)
def test_shared_fallback_disabled(workload, kw) -> None:
    d = base()
    d["byok_keys"] = [key("k1")]
    if workload:
        d["workloads"] = [workload]
    plan = planner(d).plan(req(**kw))
    assert route(plan) == [("m1", "p1", "byok", "k1")]
    r = reasons(plan)
    assert r[("m1", "p1", "shared", None)] == "shared_fallback_disabled"
    assert r[("m1", "p2", "shared", None)] == "shared_fallback_disabled"


def test_provider_not_in_shared_capacity() -> None:
    d = base()
    d["shared_capacity"] = {"providers": ["p2"]}
    plan = planner(d).plan(req())
    assert route(plan) == [("m1", "p2", "shared", None)]
    assert reasons(plan)[("m1", "p1", "shared", None)] == "no_shared_capacity"


def test_never_for_key_models_applies_where_the_key_would_serve() -> None:
    d = base()
    d["byok_keys"] = [
        key(
            "k1",
            shared_fallback="never_for_key_models",
            filters={"models": ["m1"], "api_keys": ["a1"]},
        ),
    ]
    p = planner(d)
    plan = p.plan(req("a1", "m1"))
    r = reasons(plan)
    assert r[("m1", "p1", "shared", None)] == "shared_fallback_disabled"
    assert ("m1", "p2", "shared", None) in [
        (a.model, a.provider, a.credential, a.key_id) for a in plan.attempts
    ]  # other provider untouched
    # A model outside the key's filter keeps shared capacity on that provider.
    assert ("m2", "p1", "shared", None) in route(p.plan(req("a1", "m2")))
    # An API key the key does not serve is unaffected by its setting.
    assert ("m1", "p1", "shared", None) in route(p.plan(req("a2", "m1")))


def test_never_for_key_models_holds_while_the_key_cools_down() -> None:
    d = base()
    d["byok_keys"] = [key("k1", shared_fallback="never_for_key_models", filters={"models": ["m1"]})]
    plan = planner(d).plan(req(provider_only=("p1",)), cooling_keys=frozenset({"k1"}))
    assert plan.attempts == ()
    r = reasons(plan)
    assert r[("m1", "p1", "byok", "k1")] == "key_cooling_down"
    assert r[("m1", "p1", "shared", None)] == "shared_fallback_disabled"
    assert plan.error is not None and plan.error.code == 404


def test_never_for_provider_removes_shared_for_every_model_of_the_provider(acme: Planner) -> None:
    for model in ("anthropic/claude-sonnet-4", "anthropic/claude-3.5-haiku"):
        plan = acme.plan(req("public-chat-prod", model))
        assert reasons(plan)[(model, "bedrock", "shared", None)] == "shared_fallback_disabled"
        assert (model, "anthropic", "shared", None) in route(plan)


# --------------------------------------------------------------------------- ZDR


def test_zdr_narrows_the_pool(acme: Planner) -> None:
    plan = acme.plan(req("public-chat-prod", "anthropic/claude-sonnet-4", zdr=True))
    assert plan.attempts and all(a.zdr for a in plan.attempts)
    assert route(plan)[0] == ("anthropic/claude-sonnet-4", "bedrock", "byok", "bedrock-prod")
    r = reasons(plan)
    assert (
        r[("anthropic/claude-sonnet-4", "anthropic", "byok", "ant-prod-primary")] == "zdr_required"
    )
    assert r[("anthropic/claude-sonnet-4", "anthropic", "shared", None)] == "zdr_required"
    # openai endpoints are not ZDR: the gpt-4.1-mini fallback is gone entirely
    assert all(a.provider != "openai" for a in plan.attempts)


def test_zdr_fails_safely_with_reasons_when_nothing_is_left() -> None:
    d = base()
    d["byok_keys"] = [key("k1")]
    plan = planner(d).plan(req(zdr=True))
    assert plan.attempts == ()
    assert plan.error is not None and plan.error.code == 404
    got = {
        (e["provider"], e["credential"], e["key_id"], e["reason"])
        for e in plan.error.metadata["excluded"]
    }
    assert got == {
        ("p1", "byok", "k1", "zdr_required"),
        ("p1", "shared", None, "zdr_required"),
        ("p2", "shared", None, "zdr_required"),
    }


def test_key_zdr_overrides_endpoint_for_byok_only() -> None:
    d = base()
    d["byok_keys"] = [key("zdr-key", zdr=True), key("plain")]
    plan = planner(d).plan(req(zdr=True))
    assert route(plan) == [("m1", "p1", "byok", "zdr-key")]  # shared p1 endpoint is not ZDR
    assert plan.attempts[0].zdr is True
    d["models"][0]["endpoints"][0]["zdr"] = True
    d["byok_keys"] = [key("nozdr", zdr=False)]
    plan = planner(d).plan(req(zdr=True))
    assert route(plan) == [("m1", "p1", "shared", None)]
    assert reasons(plan)[("m1", "p1", "byok", "nozdr")] == "zdr_required"


@pytest.mark.parametrize("source", ["workload", "api_guardrail", "member_guardrail", "default"])
def test_zdr_is_turned_on_by_any_source(source: str) -> None:
    d = base()
    d["models"][0]["endpoints"][1]["zdr"] = True
    kw: dict = {}
    if source == "workload":
        d["workloads"] = [{"id": "w", "zdr": "required"}]
        kw["workload"] = "w"
    elif source == "api_guardrail":
        d["guardrails"] = [{"id": "g", "enforce_zdr": True}]
        d["api_keys"][0]["guardrail"] = "g"
    elif source == "member_guardrail":
        d["guardrails"] = [{"id": "g", "enforce_zdr": True}]
        d["members"][0]["guardrail"] = "g"
        kw["member_id"] = "alice"
    else:
        d["guardrails"] = [{"id": "default", "enforce_zdr": True}]
    plan = planner(d).plan(req(**kw))
    assert route(plan) == [("m1", "p2", "shared", None)]


def test_zdr_preferred_tries_zdr_routes_first_within_a_tier() -> None:
    d = base()
    d["models"][0]["endpoints"][1]["zdr"] = True
    d["workloads"] = [{"id": "w", "zdr": "preferred"}]
    p = planner(d)
    assert [a.provider for a in p.plan(req()).attempts] == ["p1", "p2"]
    assert [a.provider for a in p.plan(req(workload="w")).attempts] == ["p2", "p1"]


# --------------------------------------------------------------------------- allow/ignore


def test_request_provider_only_and_ignore() -> None:
    p = planner(base())
    plan = p.plan(req(provider_only=("p2",)))
    assert route(plan) == [("m1", "p2", "shared", None)]
    assert reasons(plan)[("m1", "p1", None, None)] == "provider_not_allowed"
    plan = p.plan(req(provider_ignore=("p2",)))
    assert route(plan) == [("m1", "p1", "shared", None)]
    assert reasons(plan)[("m1", "p2", None, None)] == "provider_ignored"


def test_allowlists_intersect_across_workload_and_guardrails() -> None:
    d = base()
    d["models"].append(
        {
            "id": "m3",
            "endpoints": [
                {"provider": "p2", "upstream_model": "m3", "price": {"input": "1", "output": "1"}}
            ],
        }
    )
    d["workloads"] = [
        {"id": "w", "allowed_models": ["m1", "m2"], "allowed_providers": ["p1", "p2"]}
    ]
    d["guardrails"] = [{"id": "g", "allowed_models": ["m1", "m3"], "allowed_providers": ["p2"]}]
    d["api_keys"][0]["guardrail"] = "g"
    plan = planner(d).plan(req("a1", "m1", "m2", "m3", workload="w"))
    # m1 is the only model both allow, and p2 the only provider both allow.
    assert route(plan) == [("m1", "p2", "shared", None)]
    r = reasons(plan)
    assert r[("m1", "p1", None, None)] == "provider_not_allowed"
    assert r[("m2", None, None, None)] == "model_not_allowed"
    assert r[("m3", None, None, None)] == "model_not_allowed"


def test_guardrail_ignore_lists(acme: Planner) -> None:
    plan = acme.plan(req("sandbox-dev", "openai/gpt-4o-mini"))
    assert plan.error is None
    assert all(a.provider != "deepinfra" for a in plan.attempts)
    d = base()
    d["guardrails"] = [{"id": "g", "ignored_models": ["m2"], "ignored_providers": ["p1"]}]
    d["members"][1]["guardrail"] = "g"
    plan = planner(d).plan(req("a1", "m1", "m2", member_id="bob"))
    assert route(plan) == [("m1", "p2", "shared", None)]
    r = reasons(plan)
    assert r[("m1", "p1", None, None)] == "provider_ignored"
    assert r[("m2", None, None, None)] == "model_not_allowed"


def test_default_guardrail_applies_to_everyone() -> None:
    d = base()
    d["guardrails"] = [{"id": "default", "ignored_providers": ["p1"]}, {"id": "g"}]
    d["api_keys"][1]["guardrail"] = "g"
    p = planner(d)
    for api in ("a1", "a2"):
        plan = p.plan(req(api, "m1"))
        assert [a.provider for a in plan.attempts] == ["p2"]
        assert reasons(plan)[("m1", "p1", None, None)] == "provider_ignored"


def test_guardrail_blocking_everything_is_403_but_workload_is_404() -> None:
    d = base()
    d["guardrails"] = [{"id": "g", "allowed_models": ["m2"]}]
    d["api_keys"][0]["guardrail"] = "g"
    d["workloads"] = [{"id": "w", "allowed_models": ["m2"]}]
    p = planner(d)
    plan = p.plan(req("a1", "m1"))
    assert plan.error is not None and plan.error.code == 403
    assert plan.error.metadata["excluded"][0]["reason"] == "model_not_allowed"
    plan = p.plan(req("a2", "m1", workload="w"))
    assert plan.error is not None and plan.error.code == 404


# --------------------------------------------------------------------------- key filters


def test_environment_separation_dev_key_never_gets_prod_only_key(acme: Planner) -> None:
    prod_only = {
        "oai-prod-primary",
        "oai-prod-backup",
        "ant-prod-primary",
        "ant-prod-backup",
        "bedrock-prod",
    }
    for model in ("openai/gpt-4.1-mini", "anthropic/claude-sonnet-4", "anthropic/claude-3.5-haiku"):
        plan = acme.plan(req("coding-agent-dev", model))
        used = {a.key_id for a in plan.attempts}
        assert not used & prod_only
        assert used & {"oai-nonprod", "ant-nonprod"}
        r = reasons(plan)
        assert any(v == "key_filter_environment" and k[3] in prod_only for k, v in r.items())
    plan = acme.plan(req("public-chat-prod", "openai/gpt-4.1-mini"))
    assert "oai-nonprod" not in {a.key_id for a in plan.attempts}


def test_member_filter() -> None:
    d = base()
    d["byok_keys"] = [key("alices", filters={"members": ["alice"]})]
    p = planner(d)
    assert route(p.plan(req(member_id="alice", provider_only=("p1",))))[0] == (
        "m1",
        "p1",
        "byok",
        "alices",
    )
    plan = p.plan(req(member_id="bob", provider_only=("p1",)))
    assert [a.credential for a in plan.attempts] == ["shared"]
    assert reasons(plan)[("m1", "p1", "byok", "alices")] == "key_filter_member"
    plan = p.plan(req(provider_only=("p1",)))  # no member at all: a member filter can't match
    assert reasons(plan)[("m1", "p1", "byok", "alices")] == "key_filter_member"


def test_api_key_owner_is_the_member_when_the_request_names_none() -> None:
    d = base()
    d["api_keys"][0]["owner"] = "alice"
    d["byok_keys"] = [key("alices", filters={"members": ["alice"]})]
    assert planner(d).plan(req(provider_only=("p1",))).attempts[0].key_id == "alices"


@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        ({"models": ["m2"]}, "key_filter_model"),
        ({"api_keys": ["a2"]}, "key_filter_api_key"),
        ({"environments": ["dev"]}, "key_filter_environment"),
    ],
)
def test_key_filters_each_exclude(filters: dict, reason: str) -> None:
    d = base()
    d["byok_keys"] = [key("k", filters=filters)]
    plan = planner(d).plan(req("a1", "m1"))
    assert "k" not in {a.key_id for a in plan.attempts}
    assert reasons(plan)[("m1", "p1", "byok", "k")] == reason


def test_every_present_filter_must_match() -> None:
    d = base()
    d["byok_keys"] = [key("k", filters={"api_keys": ["a1"], "environments": ["dev"]})]
    plan = planner(d).plan(req("a1", "m1"))
    assert reasons(plan)[("m1", "p1", "byok", "k")] == "key_filter_environment"


def test_disabled_and_cooling_keys() -> None:
    d = base()
    d["byok_keys"] = [key("off", disabled=True), key("hot"), key("ok", order=9)]
    p = planner(d)
    plan = p.plan(req(provider_only=("p1",)))
    assert [a.key_id for a in plan.attempts] == ["hot", "ok", None]
    assert reasons(plan)[("m1", "p1", "byok", "off")] == "key_disabled"
    plan = p.plan(req(provider_only=("p1",)), cooling_keys={"hot"})
    assert [a.key_id for a in plan.attempts] == ["ok", None]
    assert reasons(plan)[("m1", "p1", "byok", "hot")] == "key_cooling_down"
    # the memo must not leak the cooling plan back into the normal one
    assert [a.key_id for a in p.plan(req(provider_only=("p1",))).attempts] == ["hot", "ok", None]


# --------------------------------------------------------------------------- endpoint screens


def test_data_collection(acme: Planner) -> None:
    model = "meta-llama/llama-3.3-70b-instruct"
    # batch is data_class internal: deepinfra (data_collection: allow) is fine...
    plan = acme.plan(req("batch-prod", model, workload="batch"))
    assert "deepinfra" in {a.provider for a in plan.attempts}
    # ...unless the request denies data collection...
    plan = acme.plan(req("batch-prod", model, workload="batch", data_collection="deny"))
    assert "deepinfra" not in {a.provider for a in plan.attempts}
    assert reasons(plan)[(model, "deepinfra", None, None)] == "data_collection"
    assert "vertex" in {a.provider for a in plan.attempts}  # only the retaining provider goes


@pytest.mark.parametrize(
    "data_class", ["confidential", "regulated", "legal", "financial", "proprietary_code"]
)
def test_confidential_data_classes_deny_collecting_providers(data_class: str) -> None:
    d = base()
    d["providers"][0]["data_collection"] = "allow"
    d["workloads"] = [{"id": "w", "data_class": data_class}]
    plan = planner(d).plan(req(workload="w"))
    assert route(plan) == [("m1", "p2", "shared", None)]
    assert reasons(plan)[("m1", "p1", None, None)] == "data_collection"


def test_capabilities_from_workload_and_request() -> None:
    d = base()
    d["workloads"] = [{"id": "w", "requires": ["tools"]}]
    p = planner(d)
    plan = p.plan(req("a1", "m1", "m2", workload="w"))
    assert {a.model for a in plan.attempts} == {"m1"}
    assert reasons(plan)[("m2", "p1", None, None)] == "missing_capability"
    plan = p.plan(req("a1", "m1", workload="w", requires=("json",)))
    assert route(plan) == [("m1", "p2", "shared", None)]
    assert reasons(plan)[("m1", "p1", None, None)] == "missing_capability"


def test_max_price() -> None:
    p = planner(base())
    plan = p.plan(req(max_price_output=Decimal("3")))
    assert route(plan) == [("m1", "p1", "shared", None)]
    assert reasons(plan)[("m1", "p2", None, None)] == "over_max_price"
    plan = p.plan(req(max_price_input=Decimal("0.5")))
    assert plan.error is not None and plan.error.code == 404


def test_context_length_screen() -> None:
    d = base()
    d["models"][0]["endpoints"][0]["context_length"] = 1000
    plan = planner(d).plan(req(estimated_input_tokens=5000))
    assert route(plan) == [("m1", "p2", "shared", None)]
    assert reasons(plan)[("m1", "p1", None, None)] == "context_too_long"


def test_effective_from_price_change_reorders_providers() -> None:
    d = base()
    d["models"][0]["endpoints"][1]["price"]["effective_from"] = [
        {"date": "2026-12-01", "input": "0.1", "output": "0.1"}
    ]
    p = planner(d)
    before = p.plan(req()).attempts
    after = p.plan(RouteRequest("a1", ("m1",), at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))).attempts
    assert [a.provider for a in before] == ["p1", "p2"]
    assert [a.provider for a in after] == ["p2", "p1"]


# --------------------------------------------------------------------------- errors


def test_bad_requests() -> None:
    p = planner(base())
    e = p.plan(RouteRequest("nope", ("m1",), at=DAY)).error
    assert e is not None and e.code == 401
    e = p.plan(RouteRequest("a1", (), at=DAY)).error
    assert e is not None and e.code == 400
    e = p.plan(req(workload="ghost")).error
    assert e is not None and e.code == 400 and "ghost" in e.message
    e = p.plan(req(member_id="ghost")).error
    assert e is not None and e.code == 400
    plan = p.plan(req("a1", "no/such-model"))
    assert plan.error is not None and plan.error.code == 404
    assert plan.excluded[0].reason == "model_unknown"


def test_api_key_default_workload_applies(acme: Planner) -> None:
    # legal-prod's default workload is legal-review (strict): no shared even without --workload
    plan = acme.plan(req("legal-prod", "anthropic/claude-sonnet-4"))
    assert all(a.credential == "byok" for a in plan.attempts)
    assert (plan.max_attempts, plan.deadline_s) == (3, 90)


def test_endpoint_lookup_and_plan_json_shape(acme: Planner) -> None:
    ep = acme.endpoint("anthropic/claude-sonnet-4", "bedrock")
    assert ep.upstream_model.startswith("anthropic.claude-sonnet-4")
    with pytest.raises(KeyError):
        acme.endpoint("anthropic/claude-sonnet-4", "openai")
    d = acme.plan(req("public-chat-prod", "openai/gpt-4.1")).to_dict()
    assert set(d) == {"attempts", "excluded", "error"}
    assert set(d["attempts"][0]) == {"model", "provider", "credential", "key_id", "tier"}


def test_memo_matches_uncached(acme: Planner) -> None:
    r = req("public-chat-prod", "anthropic/claude-sonnet-4", zdr=True)
    assert acme.plan(r) == acme.plan_uncached(r)
    assert acme.plan(r) is acme.plan(r)


def test_resolve_reports_who_is_asking(acme: Planner) -> None:
    r = acme.resolve(RouteRequest("sandbox-dev", ("openai/gpt-4o-mini",)))
    assert not isinstance(r, Exception)
    assert (r.environment, r.app, r.member_id, r.workload) == ("dev", "sandbox", "dan", None)
    assert r.guardrails == ("sandbox", "default")
    r = acme.resolve(RouteRequest("legal-prod", ("x",), member_id="alice"))
    assert not isinstance(r, Exception)
    assert (r.workload, r.data_class, r.guardrails) == (
        "legal-review",
        "legal",
        ("legal", "default"),
    )
    err = acme.resolve(RouteRequest("ghost", ("x",)))
    assert isinstance(err, Exception) and err.code == 401


def test_provider_order_with_dated_prices_keeps_price_order_for_the_rest() -> None:
    d = base()
    d["providers"].append(dict(d["providers"][0], id="p3", base_url="http://127.0.0.1:3"))
    d["shared_capacity"]["providers"].append("p3")
    d["models"][0]["endpoints"].append(
        {
            "provider": "p3",
            "upstream_model": "m1-up-p3",
            "price": {"input": "0.5", "output": "0.5"},
            "supports": ["tools"],
        }
    )
    d["models"][0]["endpoints"][1]["price"]["effective_from"] = [
        {"date": "2026-12-01", "input": "0.1", "output": "0.1"}
    ]
    p = planner(d)
    dec = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    assert [a.provider for a in p.plan(req()).attempts] == ["p3", "p1", "p2"]
    assert [a.provider for a in p.plan(RouteRequest("a1", ("m1",), at=dec)).attempts] == [
        "p2",
        "p3",
        "p1",
    ]
    assert [a.provider for a in p.plan(req(provider_order=("p1",))).attempts] == ["p1", "p3", "p2"]


def test_lists_instead_of_tuples_still_plan(acme: Planner) -> None:
    r = RouteRequest("public-chat-prod", ["openai/gpt-4.1"], at=DAY)  # type: ignore[arg-type]
    assert acme.plan(r).attempts == acme.plan(req("public-chat-prod", "openai/gpt-4.1")).attempts
