"""The real `openai` and `anthropic` SDKs against `byok-ledger serve` on loopback: chat,
tools, errors and /v1/models, each answer checked against the request record written."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest
from gatewaykit import SECRETS, record_of, records


def oa(server, key: str = "app", **kw) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.url + "/v1", api_key=SECRETS.get(key, key), max_retries=0, **kw
    )


def an(server, key: str = "app") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=SECRETS.get(key, key), max_retries=0)


MSG = [{"role": "user", "content": "hello there"}]


def test_openai_chat_is_served_priced_and_logged(gw):
    fleet, logs, server = gw
    raw = oa(server).chat.completions.with_raw_response.create(
        model="m/a", messages=MSG, max_tokens=50, extra_headers={"X-Workflow-Id": "wf-1"}
    )
    c = raw.parse()
    rid = raw.headers["x-request-id"]
    assert c.model == "m/a"  # the gateway slug, not the upstream name
    assert c.choices[0].message.content
    rec = record_of(logs, rid)
    assert rec["status"] == "ok" and rec["model"] == "m/a" and rec["provider"] == "p1"
    assert rec["credential"] == "byok" and rec["key_id"] == "k1"
    assert rec["workflow_id"] == "wf-1"
    assert rec["usage"]["output_tokens"] == c.usage.completion_tokens
    assert rec["usage"]["input_tokens"] == c.usage.prompt_tokens
    extra = c.usage.model_extra
    assert extra["cost_details"] == rec["cost"]
    total = sum(
        Decimal(rec["cost"][k])
        for k in ("provider_usd", "platform_fee_usd", "platform_credits_usd")
    )
    assert Decimal(extra["cost"]) == total > 0
    assert fleet["p1"].count() == 1


def test_openai_tools_round_trip_through_an_anthropic_provider(gw):
    fleet, logs, server = gw
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    raw = oa(server).chat.completions.with_raw_response.create(
        model="m/a",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=tools,
        tool_choice="required",
        extra_body={"provider": {"only": ["p2"]}},
    )
    c = raw.parse()
    calls = c.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    json.loads(calls[0].function.arguments)
    assert c.choices[0].finish_reason == "tool_calls"
    rec = record_of(logs, raw.headers["x-request-id"])
    assert rec["provider"] == "p2" and rec["status"] == "ok"
    assert fleet["p2"].count() == 1 and fleet["p1"].count() == 0


def test_openrouter_models_list_and_user_are_honoured(gw):
    fleet, logs, server = gw
    fleet["p1"].add_fault("server_error", status=500)
    raw = oa(server).chat.completions.with_raw_response.create(
        model="m/b",
        messages=MSG,
        user="alice",
        extra_body={"models": ["m/b", "m/c"]},
    )
    c = raw.parse()
    assert c.model == "m/c"
    rec = record_of(logs, raw.headers["x-request-id"])
    assert rec["requested_models"] == ["m/b", "m/c"]
    assert rec["fallback_used"] is True and rec["fallback_reason"] == "model_fallback"
    assert rec["member_id"] == "alice"


def test_anthropic_sdk_messages_and_tools(gw):
    fleet, logs, server = gw
    client = an(server)
    raw = client.messages.with_raw_response.create(
        model="m/a",
        max_tokens=64,
        system="be brief",
        messages=MSG,
        metadata={"user_id": "bob"},
    )
    m = raw.parse()
    assert m.model == "m/a" and m.content[0].type == "text" and m.content[0].text
    rec = record_of(logs, m.id)
    assert rec["member_id"] == "bob"
    assert rec["usage"]["output_tokens"] == m.usage.output_tokens
    assert m.usage.model_extra["cost_details"] == rec["cost"]

    m2 = client.messages.create(
        model="m/a",
        max_tokens=64,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}],
        tool_choice={"type": "any"},
    )
    assert m2.stop_reason == "tool_use"
    tool = next(b for b in m2.content if b.type == "tool_use")
    assert tool.name == "get_weather" and isinstance(tool.input, dict)
    # The tool result goes back through the OpenAI-wire provider too.
    m3 = client.messages.create(
        model="m/b",
        max_tokens=64,
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [tool.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "sunny"}],
            },
        ],
    )
    assert record_of(logs, m3.id)["provider"] == "p1"


@pytest.mark.parametrize("key", ["nope", ""])
def test_401_envelopes_on_both_wires_are_logged_without_the_key(gw, key):
    _, logs, server = gw
    with pytest.raises(openai.AuthenticationError) as e:
        oa(server, key or "x").chat.completions.create(model="m/a", messages=MSG)
    body = e.value.body
    assert body["code"] == 401 and body["type"] == "authentication_error"
    rec = record_of(logs, body["metadata"]["request_id"])
    assert rec["error_code"] == 401 and rec["api_key_id"] is None
    with pytest.raises(anthropic.AuthenticationError) as e2:
        an(server, key or "x").messages.create(model="m/a", max_tokens=5, messages=MSG)
    assert e2.value.body["error"]["type"] == "authentication_error"
    if key:
        for f in logs.rglob("*.jsonl"):
            assert key not in f.read_text()


def test_402_403_404_envelopes(gw):
    _, logs, server = gw
    with pytest.raises(openai.APIStatusError) as e:
        oa(server, "lim").chat.completions.create(model="m/a", messages=MSG)
    assert e.value.status_code == 402
    meta = e.value.body["metadata"]
    assert meta["scope"] == "api_key" and meta["scope_id"] == "lim"
    assert record_of(logs, meta["request_id"])["error_code"] == 402

    with pytest.raises(openai.PermissionDeniedError) as e:
        oa(server, "guard").chat.completions.create(model="m/a", messages=MSG)
    assert e.value.body["code"] == 403
    assert record_of(logs, e.value.body["metadata"]["request_id"])["error_code"] == 403

    with pytest.raises(anthropic.NotFoundError) as e3:
        an(server).messages.create(model="m/nope", max_tokens=5, messages=MSG)
    err = e3.value.body["error"]
    assert err["code"] == 404 and err["type"] == "not_found_error"
    assert err["metadata"]["excluded"]
    assert record_of(logs, err["metadata"]["request_id"])["error_code"] == 404


def test_429_and_5xx_envelopes_name_every_attempt(gw):
    fleet, logs, server = gw
    fleet["p1"].add_fault("rate_limit", retry_after=30)
    fleet["p2"].add_fault("rate_limit", retry_after=30)
    with pytest.raises(openai.RateLimitError) as e:
        oa(server).chat.completions.create(model="m/a", messages=MSG)
    assert e.value.response.headers["retry-after"] == "30"
    body = e.value.body
    assert body["code"] == 429 and len(body["metadata"]["attempts"]) >= 2
    rec = record_of(logs, body["metadata"]["request_id"])
    assert rec["error_code"] == 429 and len(rec["attempts"]) == len(body["metadata"]["attempts"])

    fleet.reset()
    fleet["p1"].add_fault("bad_request")
    with pytest.raises(openai.BadRequestError):
        oa(server).chat.completions.create(model="m/b", messages=MSG)

    fleet.reset()
    # Cooling keys from the 429s above are still resting: use a fresh model route set.
    fleet["p2"].add_fault("server_error", status=500)
    with pytest.raises(anthropic.APIStatusError) as e4:
        an(server).messages.create(model="m/c", max_tokens=5, messages=MSG)
    assert e4.value.status_code in (502, 503)
    err = e4.value.body["error"]
    assert err["code"] == e4.value.status_code
    assert record_of(logs, err["metadata"]["request_id"])["error_code"] == err["code"]


def test_models_lists_what_the_key_may_use(gw):
    _, _, server = gw
    ids = [m.id for m in oa(server).models.list()]
    assert ids == ["m/a", "m/b", "m/c"]
    assert [m.id for m in oa(server, "guard").models.list()] == ["m/b"]
    assert [m.id for m in an(server, "guard").models.list()] == ["m/b"]
    with pytest.raises(openai.AuthenticationError):
        oa(server, "bad").models.list()


def test_bad_bodies_are_refused_with_a_named_field_and_logged(gw):
    _, logs, server = gw
    h = {"authorization": "Bearer " + SECRETS["app"], "content-type": "application/json"}
    url = server.url + "/v1/chat/completions"
    cases = [
        (b"{not json", "not valid JSON"),
        (b'{"model":"m/a","messages":[{"role":"user","content":"x"}],"max_tokens":NaN}', "JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"model":"m/a","messages":[]}', "messages"),
        (
            b'{"model":"m/a","messages":[{"role":"user","content":"x"}],"max_tokens":true}',
            "max_tokens",
        ),
        (
            b'{"model":"m/a","messages":[{"role":"user","content":"x"}],"max_tokens":-5}',
            "max_tokens",
        ),
        (
            b'{"model":"m/a","messages":[{"role":"user","content":"x"}],"temprature":1}',
            "temprature",
        ),
        (
            b'{"model":"m/a","messages":[{"role":"user","content":"x"}],"temperature":1e999}',
            "temperature",
        ),
        (b'{"model":5,"messages":[{"role":"user","content":"x"}]}', "model"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
        ('{"model":"m/a","messages":"\udcff"}'.encode("utf-8", "surrogatepass"), "messages"),
    ]
    for data, word in cases:
        r = httpx.post(url, content=data, headers=h)
        assert r.status_code == 400, (data[:60], r.text)
        err = r.json()["error"]
        assert word in err["message"], (data[:60], err)
        assert "Traceback" not in r.text
        assert record_of(logs, err["metadata"]["request_id"])["error_code"] == 400
    big = b'{"model":"m/a","messages":[{"role":"user","content":"' + b"x" * 5_000_000 + b'"}]}'
    r = httpx.post(url, content=big, headers=h)
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
    r = httpx.post(url, content=iter([big]), headers=h)  # chunked: no Content-Length
    assert r.status_code == 413
    r = httpx.get(server.url + "/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == 404


def test_idempotency_key_replays_without_a_second_provider_call(gw):
    fleet, logs, server = gw
    client = oa(server)
    h = {"Idempotency-Key": "idem-gw-1"}
    a = client.chat.completions.create(model="m/b", messages=MSG, extra_headers=h)
    b = client.chat.completions.create(model="m/b", messages=MSG, extra_headers=h)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert fleet["p1"].count() == 1


def test_explain_and_outcomes(gw):
    _, logs, server = gw
    h = {"authorization": "Bearer " + SECRETS["app"]}
    r = httpx.post(server.url + "/v1/explain", json={"model": "m/a", "zdr": True}, headers=h)
    plan = r.json()
    assert set(plan) == {"attempts", "excluded", "error"}
    assert plan["attempts"] and {a["provider"] for a in plan["attempts"]} == {"p2"}
    assert any(x["reason"] == "zdr_required" for x in plan["excluded"])
    r = httpx.post(
        server.url + "/v1/explain", json={"model": "m/a", "provider": {"bogus": 1}}, headers=h
    )
    assert r.status_code == 400
    r = httpx.post(
        server.url + "/v1/outcomes", json={"request_id": "req_x", "accepted": True}, headers=h
    )
    assert r.status_code == 200 and r.json()["event_id"].startswith("evt_")
    for bad in (
        {"accepted": True},
        {"request_id": "r", "accepted": "yes"},
        {"request_id": "r", "accepted": True, "score": "NaN"},
    ):
        assert httpx.post(server.url + "/v1/outcomes", json=bad, headers=h).status_code == 400


def test_metrics_have_no_secret_and_count_requests(gw):
    _, _, server = gw
    oa(server).chat.completions.create(model="m/b", messages=MSG)
    text = httpx.get(server.url + "/metrics").text
    assert 'byok_gateway_requests_total{endpoint="/v1/chat/completions",status="200"}' in text
    assert "byok_gateway_budget_headroom_usd" in text
    assert "byok_gateway_upstream_latency_seconds_bucket" in text
    for s in SECRETS.values():
        assert s not in text
    assert "fake-" not in text  # no provider secret either


def test_bad_anthropic_bodies_are_refused_with_a_named_field_and_logged(gw):
    _, logs, server = gw
    h = {"x-api-key": SECRETS["app"], "content-type": "application/json"}
    url = server.url + "/v1/messages"
    user = [{"role": "user", "content": "x"}]
    cases = [
        ({"model": "m/a", "messages": user}, "max_tokens"),
        ({"model": "m/a", "max_tokens": 0, "messages": user}, "max_tokens"),
        (
            {"model": "m/a", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "messages[0].role",
        ),
        (
            {"model": "m/a", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
        ),
        (
            {
                "model": "m/a",
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "content": "x"}]}
                ],
            },
            "tool_use_id",
        ),
        (
            {
                "model": "m/a",
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}
                ],
            },
            "source.type",
        ),
        (
            {
                "model": "m/a",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "video"}]}],
            },
            "video",
        ),
        ({"model": "m/a", "max_tokens": 5, "messages": user, "system": 7}, "system"),
        (
            {"model": "m/a", "max_tokens": 5, "messages": user, "stop_sequences": "x"},
            "stop_sequences",
        ),
        (
            {"model": "m/a", "max_tokens": 5, "messages": user, "metadata": {"user_id": 3}},
            "metadata.user_id",
        ),
        (
            {"model": "m/a", "max_tokens": 5, "messages": user, "tool_choice": {"type": "x"}},
            "tool_choice",
        ),
        ({"model": "m/a", "max_tokens": 5, "messages": user, "extra": 1}, "extra"),
    ]
    for body, word in cases:
        r = httpx.post(url, json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        out = r.json()
        assert out["type"] == "error" and out["error"]["type"] == "invalid_request_error"
        assert word in out["error"]["message"], (body, out)
        assert record_of(logs, out["error"]["metadata"]["request_id"])["error_code"] == 400


def test_502_when_upstreams_fail_in_different_ways(gw):
    fleet, logs, server = gw
    fleet["p1"].add_fault("rate_limit", retry_after=1)
    fleet["p2"].add_fault("server_error", status=500)
    for exc, call in (
        (
            openai.APIStatusError,
            lambda: oa(server).chat.completions.create(model="m/a", messages=MSG),
        ),
        (
            anthropic.APIStatusError,
            lambda: an(server).messages.create(model="m/a", max_tokens=5, messages=MSG),
        ),
    ):
        with pytest.raises(exc) as e:
            call()
        assert e.value.status_code == 502
        body = e.value.body
        err = body if "code" in body else body["error"]
        assert err["code"] == 502 and err["type"] in ("upstream_error", "api_error")
        kinds = {a["status"] for a in err["metadata"]["attempts"]}
        assert len(kinds) > 1  # mixed failures: not "all rate limited" nor "all unavailable"
        assert record_of(logs, err["metadata"]["request_id"])["error_code"] == 502


def test_a_client_that_leaves_mid_body_is_logged_499(gw):
    import re
    import socket
    import time

    _, logs, server = gw
    before = {r["request_id"] for r in records(logs)}
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {SECRETS['app']}\r\ncontent-length: 5000\r\n\r\n".encode()
        + b'{"model": "m/a", "messages": ['
    )
    time.sleep(0.3)
    s.close()
    deadline = time.monotonic() + 5
    while True:
        new = [r for r in records(logs) if r["request_id"] not in before]
        if new or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(r["error_code"], r["api_key_id"]) for r in new] == [(499, "app")]
    assert re.fullmatch(r"req_[0-9a-f]{24}", new[0]["request_id"])


def test_other_methods_and_paths_get_envelopes_not_the_completion_path(gw):
    """The completion endpoints are served on a raw ASGI path for POST only: another
    method gets the 405 envelope, an unknown path the 404 one (Starlette's routing), and
    a duplicated header counts once, the first one (as Starlette's Headers.get)."""
    _, _, server = gw
    r = httpx.get(server.url + "/v1/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["code"] == 405
    r = httpx.put(server.url + "/v1/messages", json={})
    assert r.status_code == 405 and r.json()["type"] == "error"
    r = httpx.post(server.url + "/v1/chat/completion", json={})
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]["message"]
    body = {"model": "m/b", "messages": MSG}
    twice = [("authorization", "Bearer " + SECRETS["app"]), ("authorization", "Bearer nope")]
    r = httpx.post(server.url + "/v1/chat/completions", json=body, headers=twice)
    assert r.status_code == 200, r.text
    assert r.headers["content-length"] == str(len(r.content))


def test_x_title_and_http_referer_name_the_app_in_the_record(gw):
    """OpenRouter's attribution headers through the real openai SDK: X-Title is the
    record's app (streamed or not), HTTP-Referer when there is no X-Title; a referer over
    256 characters is ignored (the API key's app), an X-Title over it is a logged 400."""
    _, logs, server = gw
    client = oa(server)

    def app_of(raw) -> str | None:
        return record_of(logs, raw.headers["x-request-id"])["app"]

    create = client.chat.completions.with_raw_response.create
    plain = create(model="m/b", messages=MSG)
    titled = create(
        model="m/b",
        messages=MSG,
        extra_headers={"X-Title": "Checkout Bot", "HTTP-Referer": "https://shop.example"},
    )
    referred = create(model="m/b", messages=MSG, extra_headers={"HTTP-Referer": "https://a.b"})
    long_ref = create(
        model="m/b", messages=MSG, extra_headers={"HTTP-Referer": "https://a.b/" + "x" * 300}
    )
    configured = app_of(plain)
    assert configured == "t"  # the API key's app in the test config
    assert app_of(titled) == "Checkout Bot"
    assert app_of(referred) == "https://a.b"
    assert app_of(long_ref) == configured
    with client.chat.completions.with_streaming_response.create(
        model="m/b", messages=MSG, stream=True, extra_headers={"X-Title": "Stream Bot"}
    ) as raw:
        for _ in raw.iter_lines():
            pass
        rid = raw.headers["x-request-id"]
    rec = record_of(logs, rid)
    assert rec["app"] == "Stream Bot" and rec["stream"] is True and rec["status"] == "ok"
    with pytest.raises(openai.BadRequestError) as e:
        create(model="m/b", messages=MSG, extra_headers={"X-Title": "y" * 300})
    assert "x-title" in str(e.value)
    assert record_of(logs, e.value.response.headers["x-request-id"])["error_code"] == 400
