"""Strict BYOK, ZDR, key filters and allowlists hold through the gateway under every fault:
the routing property test's random configs, requests and fault sequences
(tests/routing/test_props_routing.py), sent over real loopback HTTP with the openai SDK to
the gateway app (uvicorn in a thread), streamed and not. Every attempt in every record is
checked against the raw config, and there is exactly one record per request."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import uvicorn
from gatewaykit import free_port
from hypothesis import HealthCheck, assume, given, settings
from routing.test_props_routing import (
    KEY_IDS,
    PROVIDERS,
    check_attempt,
    scenario,
)

from gateway.app import create_app
from routing_core.config import ConfigError, parse_config
from routing_core.providers import shared_secret_env
from routing_core.request_log import read_records
from routing_core.schema import RequestRecord, Usage
from simulator.fake_providers import SHARED_LABEL, FakeProvider


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


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and t.is_alive(), "gateway did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=10)


def key_of(api_id: str) -> str:
    return f"gw-secret-{api_id}"


def run(fakes, sc: dict, stream: bool) -> None:
    cfg = copy.deepcopy(sc["config"])
    for a in cfg["api_keys"]:
        a["secret_sha256"] = hashlib.sha256(key_of(a["id"]).encode()).hexdigest()
    try:
        config = parse_config(copy.deepcopy(cfg))
    except ConfigError:
        assume(False)
    for fp in fakes.values():
        fp.reset()
    for p, label, kind, times in sc["faults"]:
        fakes[p].add_fault(kind, key=label, times=times, retry_after=None, delay_s=2.5)
    secrets = {f"K_{k.upper()}": f"sec-{k}" for k in KEY_IDS}
    secrets |= {shared_secret_env(p): "sec-shared" for p in PROVIDERS}
    with tempfile.TemporaryDirectory() as logs:
        app = create_app(
            config,
            secrets=secrets,
            base_urls={p: f.url for p, f in fakes.items()},
            router_factory=lambda c, **kw: _router(c, logs, **kw),
        )
        with served(app) as url:
            for req in sc["requests"]:
                client = openai.OpenAI(
                    base_url=url + "/v1", api_key=key_of(req["api_key_id"]), max_retries=0
                )
                extra: dict[str, Any] = {"models": req["models"], "zdr": req["zdr"]}
                if req["provider"]:
                    extra["provider"] = req["provider"]
                kw = dict(
                    model=req["models"][0],
                    messages=[{"role": "user", "content": "q" * 200}],
                    max_tokens=100,
                    extra_body=extra,
                )
                try:
                    if stream:
                        for _ in client.chat.completions.create(stream=True, **kw):
                            pass
                    else:
                        client.chat.completions.create(**kw)
                except openai.APIStatusError as e:
                    assert e.status_code in (400, 402, 403, 404, 429, 502, 503)
                    assert "Traceback" not in str(e.body)
                except openai.APIError as e:  # an error chunk mid-stream
                    assert stream and "interrupted" in str(e)
        recs = list(read_records(logs))
    assert len(recs) == len(sc["requests"])  # exactly one record per request
    for rec, req in zip(recs, sc["requests"], strict=True):
        RequestRecord.model_validate(rec)
        for a in rec["attempts"]:
            check_attempt(a, sc["config"], req)


def _router(config, logs, **kw):
    from routing_core.router import Router

    return Router(config, log_dir=logs, sleep=lambda s: None, rng_seed=0, **kw)


SETTINGS = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@settings(max_examples=15, **SETTINGS)
@given(sc=scenario())
def test_policy_holds_through_the_gateway(fakes, sc):
    run(fakes, sc, stream=False)


@settings(max_examples=10, **SETTINGS)
@given(sc=scenario(stream=True))
def test_policy_holds_through_the_gateway_when_streaming(fakes, sc):
    run(fakes, sc, stream=True)
