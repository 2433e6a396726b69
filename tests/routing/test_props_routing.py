"""Property test over random configs, requests and fault sequences, executed through the
real Router against loopback fakes (servers reused across examples). Whatever happens:
no attempt violates ZDR, strict BYOK / shared-fallback rules, key filters or allowlists;
attempts never exceed the workload bound; spend never passes the API key limit; and the
request record is exactly what the fakes saw (routes, order, statuses, usage). The same
properties hold on the streaming paths (`Router.astream`, `Router.stream`), with
mid-stream faults added."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from routing_core.config import ConfigError, parse_config
from routing_core.providers import shared_secret_env
from routing_core.request_log import read_records
from routing_core.router import Router
from routing_core.routes import RouteError
from routing_core.schema import RequestRecord, Usage
from simulator.fake_providers import SHARED_LABEL, FakeProvider

PROVIDERS = {"p1": "openai", "p2": "anthropic", "p3": "openai"}
MODELS = ["m0", "m1", "m2"]
KEY_IDS = [f"k{i}" for i in range(5)]
API = {"a1": "prod", "a2": "dev"}
FAULTS = [
    None,
    None,
    "rate_limit",
    "server_error",
    "revoked",
    "context_length",
    "bad_request",
    "overloaded",
]
# Mid-stream faults (the fakes apply them to streamed requests only).
STREAM_FAULTS = ["stream_drop", "stream_error", "stream_omit_usage", "stream_stall"]
LIMIT = Decimal("0.0005")  # two served requests fit; a third on the same key hits 402


@pytest.fixture(scope="module")
def fakes():
    keys = {f"sec-{k}": k for k in KEY_IDS} | {"sec-shared": SHARED_LABEL}
    usage = lambda body: Usage(input_tokens=40, cache_read_tokens=10, output_tokens=30)  # noqa: E731
    fps = {
        p: FakeProvider(api, name=p, keys=keys, usage_fn=usage).start()
        for p, api in PROVIDERS.items()
    }
    yield fps
    for fp in fps.values():
        fp.close()


def subset(items, min_size=0):
    return st.lists(st.sampled_from(items), min_size=min_size, max_size=len(items), unique=True)


rarely = st.integers(0, 3).map(lambda i: i == 3)  # True one time in four


@st.composite
def scenario(draw, stream: bool = False) -> dict[str, Any]:
    models = []
    for m in MODELS:
        eps = draw(subset(list(PROVIDERS), 1))
        models.append(
            {
                "id": m,
                "endpoints": [
                    {
                        "provider": p,
                        "upstream_model": f"{m}@{p}",
                        "zdr": draw(st.booleans()),
                        "price": {"input": "1", "output": "2"},
                    }
                    for p in eps
                ],
            }
        )
    served_by = {
        p: [m["id"] for m in models if any(e["provider"] == p for e in m["endpoints"])]
        for p in PROVIDERS
    }
    keys = []
    for kid in draw(subset(KEY_IDS, 1)):
        p = draw(st.sampled_from(list(PROVIDERS)))
        tier = draw(st.sampled_from(["prioritized", "prioritized", "fallback"]))
        filters: dict[str, Any] = {}
        if served_by[p] and draw(rarely):
            filters["models"] = draw(subset(served_by[p], 1))
        if draw(rarely):
            filters["api_keys"] = draw(subset(list(API), 1))
        if draw(rarely):
            filters["environments"] = draw(subset(sorted(set(API.values())), 1))
        sf_choices = ["allow"]
        if "models" in filters:
            sf_choices.append("never_for_key_models")
        if tier == "prioritized":
            sf_choices.append("never_for_provider")
        keys.append(
            {
                "id": kid,
                "provider": p,
                "secret_env": f"K_{kid.upper()}",
                "tier": tier,
                "order": draw(st.integers(0, 3)),
                "shared_fallback": draw(st.sampled_from(sf_choices)),
                "filters": filters,
                "zdr": draw(st.sampled_from([None, True, False])),
                "disabled": draw(rarely),
            }
        )
    workload = {
        "id": "w",
        "byok": "strict" if draw(rarely) else "preferred",
        "shared_fallback": not draw(rarely),
        "zdr": draw(st.sampled_from(["any", "preferred", "any", "required"])),
        "allowed_providers": draw(subset(list(PROVIDERS), 1)) if draw(rarely) else None,
        "allowed_models": draw(subset(MODELS, 1)) if draw(rarely) else None,
        "model_fallbacks": draw(subset(MODELS)),
        "max_attempts": draw(st.integers(1, 5)),
        "deadline_s": 30,
    }
    cfg = {
        "providers": [
            {
                "id": p,
                "api": api,
                "base_url": "http://127.0.0.1:9",
                "invoice_format": "focus",
                "timeout_s": 2,
            }
            for p, api in PROVIDERS.items()
        ],
        "models": models,
        "shared_capacity": {
            "providers": draw(subset(list(PROVIDERS))) if draw(rarely) else list(PROVIDERS)
        },
        "byok_keys": keys,
        "api_keys": [
            {
                "id": a,
                "secret_sha256": "0" * 64,
                "environment": env,
                "app": "t",
                "default_workload": "w",
                "limit": {"usd": str(LIMIT), "reset": "monthly", "include_byok": True},
            }
            for a, env in API.items()
        ],
        "workloads": [workload],
        "router": {"backoff_base_s": 0.001, "backoff_max_s": 0.002},
    }
    requests = [
        {
            "api_key_id": draw(st.sampled_from(list(API))),
            "models": draw(subset(MODELS, 1).map(lambda x: x[:2])),
            "zdr": draw(rarely),
            "provider": draw(
                st.sampled_from([None, {"allow_fallbacks": False}, {"only": ["p1", "p2"]}])
            ),
        }
        for _ in range(draw(st.integers(1, 4)))
    ]
    labels = [*KEY_IDS, SHARED_LABEL]
    faults = [
        (p, lab, kind, draw(st.sampled_from([None, 1, 2])))
        for p in PROVIDERS
        for lab in labels
        if (kind := draw(st.sampled_from(FAULTS + STREAM_FAULTS if stream else FAULTS))) is not None
    ]
    return {"config": cfg, "requests": requests, "faults": faults}


def check_attempt(a: dict, cfg: dict, req: dict) -> None:
    """Every policy an attempt must respect, checked from the raw config (not the planner)."""
    wl = cfg["workloads"][0]
    keys = {k["id"]: k for k in cfg["byok_keys"]}
    model = next(m for m in cfg["models"] if m["id"] == a["model"])
    ep = next(e for e in model["endpoints"] if e["provider"] == a["provider"])
    env = API[req["api_key_id"]]
    assert a["model"] in req["models"] or a["model"] in wl["model_fallbacks"]
    assert wl["allowed_models"] is None or a["model"] in wl["allowed_models"]
    assert wl["allowed_providers"] is None or a["provider"] in wl["allowed_providers"]
    prefs = req["provider"] or {}
    assert "only" not in prefs or a["provider"] in prefs["only"]
    zdr_required = req["zdr"] or wl["zdr"] == "required"
    if a["credential"] == "byok":
        k = keys[a["key_id"]]
        f = k["filters"]
        assert k["provider"] == a["provider"] and not k["disabled"]
        assert "models" not in f or a["model"] in f["models"]
        assert "api_keys" not in f or req["api_key_id"] in f["api_keys"]
        assert "environments" not in f or env in f["environments"]
        if zdr_required:
            assert (ep["zdr"] if k["zdr"] is None else k["zdr"]) is True
    else:
        assert a["key_id"] is None
        assert wl["byok"] != "strict" and wl["shared_fallback"]
        assert prefs.get("allow_fallbacks", True)
        assert a["provider"] in cfg["shared_capacity"]["providers"]
        if zdr_required:
            assert ep["zdr"] is True
        for k in keys.values():
            f = k["filters"]
            serves = ("api_keys" not in f or req["api_key_id"] in f["api_keys"]) and (
                "environments" not in f or env in f["environments"]
            )
            if k["provider"] != a["provider"] or not serves:
                continue
            assert k["shared_fallback"] != "never_for_provider"
            if k["shared_fallback"] == "never_for_key_models":
                assert a["model"] not in f["models"]


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sc=scenario())
def test_routing_invariants_hold_under_any_faults(fakes, sc):
    check_scenario(fakes, sc, stream=False)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sc=scenario(stream=True))
def test_routing_invariants_hold_when_streaming(fakes, sc):
    check_scenario(fakes, sc, stream=True)


async def _consume(router: Router, **kw: Any) -> Any:
    """Stream one request to its end; the stream object (None if it never started)."""
    stream = await router.astream(**kw)
    async with stream:
        try:
            async for _ in stream:
                pass
        except RouteError as e:
            assert e.code in (502, 504) and stream.error_reason == "upstream_interrupted"
    return stream


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sc=scenario(stream=True))
def test_routing_invariants_hold_when_streaming_sync(fakes, sc):
    check_scenario(fakes, sc, stream=True, sync=True)


def _consume_sync(router: Router, **kw: Any) -> Any:
    with router.stream(**kw) as stream:
        try:
            for _ in stream:
                pass
        except RouteError as e:
            assert e.code in (502, 504) and stream.error_reason == "upstream_interrupted"
    return stream


def check_scenario(fakes, sc, *, stream: bool, sync: bool = False) -> None:
    try:
        config = parse_config(sc["config"])
    except ConfigError:
        assume(False)
    for fp in fakes.values():
        fp.reset()
    for p, label, kind, times in sc["faults"]:
        fakes[p].add_fault(kind, key=label, times=times, retry_after=None, delay_s=2.5)
    secrets = {f"K_{k.upper()}": f"sec-{k}" for k in KEY_IDS}
    secrets |= {shared_secret_env(p): "sec-shared" for p in PROVIDERS}
    cfg = sc["config"]
    wl = cfg["workloads"][0]
    loop = asyncio.new_event_loop()
    with (
        tempfile.TemporaryDirectory() as logs,
        Router(
            config,
            log_dir=logs,
            secrets=secrets,
            base_urls={p: f.url for p, f in fakes.items()},
            sleep=lambda s: None,
            rng_seed=0,
        ) as router,
    ):
        for req in sc["requests"]:
            before = {p: len(f.served) for p, f in fakes.items()}
            kw = dict(
                api_key_id=req["api_key_id"],
                models=req["models"],
                zdr=req["zdr"],
                provider=req["provider"],
                messages=[{"role": "user", "content": "q" * 200}],
                max_tokens=100,
            )
            try:
                if stream and sync:
                    c = _consume_sync(router, **kw)
                elif stream:
                    c = loop.run_until_complete(_consume(router, **kw))
                else:
                    c = router.complete(**kw)
            except RouteError as e:
                c = None
                assert e.code in (400, 402, 403, 404, 429, 502, 503)
            recs = list(read_records(logs))
            rec = recs[-1]
            event(f"status {rec['error_code'] or 200}, {len(rec['attempts'])} attempt(s)")
            RequestRecord.model_validate(rec)
            assert len(rec["attempts"]) <= wl["max_attempts"]
            for a in rec["attempts"]:
                check_attempt(a, cfg, req)
            # The record is what the fakes saw, in order: route, key and HTTP status.
            new = sorted(
                (s for p, f in fakes.items() for s in f.served[before[p] :]), key=lambda s: s.ts
            )
            assert [(s.provider, s.key, s.status) for s in new] == [
                (a["provider"], a["key_id"] or SHARED_LABEL, a["http_status"])
                for a in rec["attempts"]
            ]
            if c is not None and getattr(c, "status", "ok") == "error":
                # A stream cut short: the route it was served on, an estimate, one record.
                assert rec["status"] == "error" and rec["model"] == c.model
                assert rec["error_reason"] == "upstream_interrupted"
                assert rec["usage_source"] == "estimated" and rec["stream"] is True
                assert rec["attempts"][-1]["status"] == "ok"
            elif c is not None:
                assert rec["status"] == "ok" and rec["attempts"][-1]["status"] == "ok"
                assert rec["upstream_model"] == new[-1].model
                if rec["usage_source"] == "provider":
                    assert rec["usage"] == new[-1].usage.as_dict()
                else:  # only a stream whose usage was omitted is estimated
                    assert stream and rec["usage_source"] == "estimated"
                    assert rec["usage"]["input_tokens"] > 0
            else:
                assert rec["status"] == "error" and rec["model"] is None
        recs = list(read_records(logs))
        assert len(recs) == len(sc["requests"])  # exactly one record per call
        now = dt.datetime.now(dt.UTC)
        for api_id in API:
            spent = sum(
                Decimal(r["cost"]["provider_usd"])
                + Decimal(r["cost"]["platform_fee_usd"])
                + Decimal(r["cost"]["platform_credits_usd"])
                for r in recs
                if r["api_key_id"] == api_id
            )
            assert spent <= LIMIT
            assert router.guard.spent("api_key", api_id, now) == spent
            assert router.guard.in_flight("api_key", api_id, now) == 0
        if stream:
            loop.run_until_complete(router.aclose())
    loop.close()
