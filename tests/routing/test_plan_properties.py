"""Property test (hypothesis): over random small configs and requests, no planned attempt
ever violates ZDR, strict BYOK / shared-fallback settings, key filters, allowlists, ignore
lists, data collection, capabilities or environment separation; tiers keep their order;
a plan with no attempts always carries an error. The checks below are an independent
re-statement of SPEC §5, not a copy of the planner."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing_core.config import parse_config
from routing_core.planning import CONFIDENTIAL_DATA_CLASSES, Planner
from routing_core.routes import RouteRequest

PROVIDERS = ["p0", "p1", "p2"]
MODELS = ["m0", "m1", "m2"]
API_KEYS = ["a0", "a1", "a2"]
MEMBERS = ["u0", "u1"]
ENVS = ["prod", "dev"]
CAPS = ["tools", "json"]
AT = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def maybe_subset(draw, items, allow_none=True):
    if allow_none and draw(st.booleans()):
        return None
    return draw(st.lists(st.sampled_from(items), unique=True, max_size=len(items)))


@st.composite
def configs(draw) -> dict:
    providers = [
        {
            "id": p,
            "api": "openai",
            "base_url": "http://127.0.0.1:9",
            "invoice_format": "focus",
            "data_collection": draw(st.sampled_from(["allow", "deny"])),
        }
        for p in PROVIDERS
    ]
    models = []
    for m in MODELS:
        eps = draw(st.lists(st.sampled_from(PROVIDERS), unique=True, min_size=1, max_size=3))
        models.append(
            {
                "id": m,
                "endpoints": [
                    {
                        "provider": p,
                        "upstream_model": f"{m}@{p}",
                        "price": {
                            "input": str(draw(st.integers(1, 9))),
                            "output": str(draw(st.integers(1, 9))),
                        },
                        "zdr": draw(st.booleans()),
                        "supports": draw(st.lists(st.sampled_from(CAPS), unique=True)),
                    }
                    for p in eps
                ],
            }
        )
    served = {
        p: [m["id"] for m in models if any(e["provider"] == p for e in m["endpoints"])]
        for p in PROVIDERS
    }
    keys = []
    for i in range(draw(st.integers(0, 7))):
        p = draw(st.sampled_from(PROVIDERS))
        tier = draw(st.sampled_from(["prioritized", "fallback"]))
        filters = {}
        fm = maybe_subset(draw, served[p]) if served[p] else None
        if fm is not None:
            filters["models"] = fm
        for name, pool in (("api_keys", API_KEYS), ("members", MEMBERS), ("environments", ENVS)):
            v = maybe_subset(draw, pool)
            if v is not None:
                filters[name] = v
        choices = ["allow"]
        if filters.get("models"):
            choices.append("never_for_key_models")
        if tier == "prioritized":
            choices.append("never_for_provider")
        k = {
            "id": f"k{i}",
            "provider": p,
            "secret_env": f"K{i}",
            "tier": tier,
            "order": draw(st.integers(0, 3)),
            "shared_fallback": draw(st.sampled_from(choices)),
            "filters": filters,
            "disabled": draw(st.booleans()),
        }
        z = draw(st.sampled_from([None, True, False]))
        if z is not None:
            k["zdr"] = z
        keys.append(k)
    guardrails = []
    for gid in ("default", "g1", "g2"):
        if draw(st.booleans()):
            guardrails.append(
                {
                    "id": gid,
                    "allowed_models": maybe_subset(draw, MODELS),
                    "ignored_models": maybe_subset(draw, MODELS, allow_none=False),
                    "allowed_providers": maybe_subset(draw, PROVIDERS),
                    "ignored_providers": maybe_subset(draw, PROVIDERS, allow_none=False),
                    "enforce_zdr": draw(st.booleans()),
                }
            )
    gids = [g["id"] for g in guardrails if g["id"] != "default"]
    api_keys = [
        {
            "id": a,
            "secret_sha256": "0" * 64,
            "environment": ENVS[i % 2],
            "app": "x",
            "guardrail": draw(st.sampled_from([None, *gids])),
            "owner": draw(st.sampled_from([None, *MEMBERS])),
        }
        for i, a in enumerate(API_KEYS)
    ]
    members = [{"id": m, "guardrail": draw(st.sampled_from([None, *gids]))} for m in MEMBERS]
    workloads = [
        {
            "id": f"w{i}",
            "data_class": draw(st.sampled_from(["public", "internal", "confidential", "legal"])),
            "allowed_models": maybe_subset(draw, MODELS),
            "allowed_providers": maybe_subset(draw, PROVIDERS),
            "byok": draw(st.sampled_from(["preferred", "strict"])),
            "shared_fallback": draw(st.booleans()),
            "zdr": draw(st.sampled_from(["required", "preferred", "any"])),
            "model_fallbacks": draw(st.lists(st.sampled_from(MODELS), unique=True, max_size=2)),
            "requires": draw(st.lists(st.sampled_from(CAPS), unique=True, max_size=1)),
        }
        for i in range(2)
    ]
    return {
        "providers": providers,
        "models": models,
        "shared_capacity": {"providers": maybe_subset(draw, PROVIDERS, allow_none=False)},
        "byok_keys": keys,
        "api_keys": api_keys,
        "members": members,
        "guardrails": [{k: v for k, v in g.items() if v is not None} for g in guardrails],
        "workloads": [{k: v for k, v in w.items() if v is not None} for w in workloads],
    }


@st.composite
def requests(draw):
    return RouteRequest(
        api_key_id=draw(st.sampled_from(API_KEYS)),
        models=tuple(draw(st.lists(st.sampled_from([*MODELS, "mx"]), min_size=1, max_size=3))),
        workload=draw(st.sampled_from([None, "w0", "w1"])),
        member_id=draw(st.sampled_from([None, *MEMBERS])),
        zdr=draw(st.booleans()),
        provider_only=draw(st.sampled_from([None, ("p0",), ("p1", "p2")])),
        provider_ignore=tuple(draw(st.lists(st.sampled_from(PROVIDERS), unique=True, max_size=1))),
        allow_fallbacks=draw(st.booleans()),
        data_collection=draw(st.sampled_from([None, "deny"])),
        requires=tuple(draw(st.lists(st.sampled_from(CAPS), unique=True, max_size=1))),
        at=AT,
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=configs(),
    req=requests(),
    cooling=st.lists(st.sampled_from([f"k{i}" for i in range(7)]), unique=True),
)
def test_no_attempt_violates_policy(data: dict, req: RouteRequest, cooling: list[str]) -> None:
    cfg = parse_config(data)
    planner = Planner(cfg)
    plan = planner.plan(req, cooling_keys=frozenset(cooling))
    assert plan == planner.plan_uncached(req, cooling_keys=cooling)  # the memo changes nothing
    assert plan == planner.plan(req, cooling_keys=set(cooling))

    api = next(a for a in data["api_keys"] if a["id"] == req.api_key_id)
    member = req.member_id or api.get("owner")
    wl = next((w for w in data["workloads"] if w["id"] == req.workload), None)
    grs = {g["id"]: g for g in data["guardrails"]}
    mg = next((m.get("guardrail") for m in data["members"] if m["id"] == member), None)
    applicable = [grs[g] for g in {api.get("guardrail"), mg, "default"} if g in grs]
    zdr_on = (
        req.zdr or (wl and wl["zdr"] == "required") or any(g["enforce_zdr"] for g in applicable)
    )
    deny = req.data_collection == "deny" or (wl and wl["data_class"] in CONFIDENTIAL_DATA_CLASSES)
    requires = set(req.requires) | set(wl["requires"] if wl else [])
    no_shared = (
        wl and (wl["byok"] == "strict" or not wl["shared_fallback"])
    ) or not req.allow_fallbacks
    keys = {k["id"]: k for k in data["byok_keys"]}
    providers = {p["id"]: p for p in data["providers"]}

    def key_serves(k: dict) -> bool:
        f = k["filters"]
        return (
            (f.get("api_keys") is None or req.api_key_id in f["api_keys"])
            and (f.get("members") is None or member in f["members"])
            and (f.get("environments") is None or api["environment"] in f["environments"])
        )

    wanted = list(dict.fromkeys([*req.models, *(wl["model_fallbacks"] if wl else [])]))
    seen_models: list[str] = []
    tier_rank = {"prioritized": 0, "shared": 1, "fallback": 2}
    last = (-1, -1)
    for a in plan.attempts:
        ep = next(
            e
            for m in data["models"]
            if m["id"] == a.model
            for e in m["endpoints"]
            if e["provider"] == a.provider
        )
        # allowlists and ignore lists
        for src in [wl, *applicable]:
            if src and src.get("allowed_models") is not None:
                assert a.model in src["allowed_models"]
            if src and src.get("allowed_providers") is not None:
                assert a.provider in src["allowed_providers"]
        for g in applicable:
            assert a.model not in g.get("ignored_models", [])
            assert a.provider not in g.get("ignored_providers", [])
        if req.provider_only is not None:
            assert a.provider in req.provider_only
        assert a.provider not in req.provider_ignore
        if deny:
            assert providers[a.provider]["data_collection"] == "deny"
        assert requires <= set(ep["supports"])
        # ZDR: the attempt's ZDR flag is the truth, and it is on whenever required
        expected_zdr = ep["zdr"]
        if a.credential == "byok":
            k = keys[a.key_id]
            assert k["provider"] == a.provider and k["tier"] == a.tier
            assert not k["disabled"] and a.key_id not in cooling
            assert key_serves(k)  # API key, member and environment separation
            fm = k["filters"].get("models")
            assert fm is None or a.model in fm
            if k.get("zdr") is not None:
                expected_zdr = k["zdr"]
        else:
            assert a.key_id is None and a.tier == "shared"
            assert not no_shared
            assert a.provider in data["shared_capacity"]["providers"]
            for k in data["byok_keys"]:
                if k["provider"] != a.provider or not key_serves(k):
                    continue
                assert k["shared_fallback"] != "never_for_provider"
                if k["shared_fallback"] == "never_for_key_models":
                    assert a.model not in k["filters"]["models"]
        assert a.zdr == expected_zdr
        if zdr_on:
            assert a.zdr
        # model by model in the requested order; tiers in order within a model
        if not seen_models or seen_models[-1] != a.model:
            assert a.model not in seen_models
            seen_models.append(a.model)
            last = (len(seen_models), -1)
        rank = (len(seen_models), tier_rank[a.tier])
        assert rank >= last
        last = rank
    assert [m for m in wanted if m in seen_models] == seen_models
    assert len(set(plan.attempts)) == len(plan.attempts)
    if not plan.attempts:
        assert plan.error is not None and plan.error.code in (400, 403, 404)
    else:
        assert plan.error is None
    attempted = {(a.model, a.provider, a.credential, a.key_id) for a in plan.attempts}
    for e in plan.excluded:
        assert (e.model, e.provider, e.credential, e.key_id) not in attempted
