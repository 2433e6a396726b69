"""Provider adapters against real loopback fakes: request/response translation both ways,
usage normalised into disjoint buckets (cached tokens never counted twice), and every
error body mapped to the failover class the router acts on."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time

import httpx
import pytest

from routing_core.providers import (
    AUTH,
    BAD_REQUEST,
    CONNECT,
    CONTEXT_LENGTH,
    RATE_LIMITED,
    SERVER,
    TIMEOUT,
    ProviderError,
    adapter_for,
    parse_retry_after,
)
from routing_core.providers.anthropic import anthropic_usage, to_messages_body
from routing_core.providers.openai import openai_usage
from routing_core.schema import Usage
from simulator.fake_providers import FakeProvider

REQ = {
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is 2+2?"},
    ],
    "max_tokens": 50,
    "temperature": 0.2,
}
CACHED = Usage(
    input_tokens=100,
    cache_read_tokens=900,
    cache_write_tokens=0,
    output_tokens=40,
    reasoning_tokens=15,
)


@pytest.fixture(scope="module")
def client():
    with httpx.Client() as c:
        yield c


@pytest.fixture(scope="module")
def oai():
    with FakeProvider(
        "openai", name="oai", keys={"sk-good": "proj_a"}, usage_fn=lambda body: CACHED
    ) as fp:
        yield fp


@pytest.fixture(scope="module")
def ant():
    usage = Usage(input_tokens=100, cache_read_tokens=900, cache_write_tokens=250, output_tokens=40)
    with FakeProvider(
        "anthropic", name="ant", keys={"ant-good": "wrk_a"}, usage_fn=lambda body: usage
    ) as fp:
        yield fp


@pytest.fixture(autouse=True)
def _clean(oai, ant):
    oai.reset()
    ant.reset()


def send(fake: FakeProvider, client, secret: str, req=REQ, timeout: float = 2.0, model="up-1"):
    return adapter_for(fake.api).send(
        client,
        req,
        upstream_model=model,
        gateway_model="gw/m",
        secret=secret,
        base_url=fake.url,
        timeout=timeout,
    )


def error_of(fn) -> ProviderError:
    with pytest.raises(ProviderError) as ei:
        fn()
    return ei.value


# ----------------------------------------------------------------------------- usage


def test_openai_usage_subtracts_cached_tokens_from_input():
    u = openai_usage(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 900},
            "completion_tokens_details": {"reasoning_tokens": 15},
        }
    )
    assert u == Usage(
        input_tokens=100,
        cache_read_tokens=900,
        cache_write_tokens=0,
        output_tokens=40,
        reasoning_tokens=15,
    )
    # Reported prompt total is reproduced exactly by the disjoint buckets.
    assert u.input_tokens + u.cache_read_tokens == 1000


def test_anthropic_usage_maps_buckets_directly():
    u = anthropic_usage(
        {
            "input_tokens": 100,
            "cache_read_input_tokens": 900,
            "cache_creation_input_tokens": 250,
            "output_tokens": 40,
        }
    )
    assert u == Usage(100, 900, 250, 40, 0)


def test_openai_round_trip_usage_not_double_counted(oai, client):
    res = send(oai, client, "sk-good")
    assert res.usage == CACHED
    assert res.body["usage"]["prompt_tokens"] == 1000
    assert res.body["usage"]["prompt_tokens_details"]["cached_tokens"] == 900
    assert res.body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 15
    assert res.body["model"] == "gw/m"
    assert res.body["choices"][0]["message"]["content"] == "This is a fake completion."
    served = oai.served[-1]
    assert (served.key, served.model, served.status, served.usage) == (
        "proj_a",
        "up-1",
        200,
        CACHED,
    )


def test_anthropic_round_trip_to_openai_shape(ant, client):
    res = send(ant, client, "ant-good")
    assert res.usage == Usage(100, 900, 250, 40, 0)
    b = res.body
    assert b["object"] == "chat.completion"
    assert b["choices"][0]["finish_reason"] == "stop"
    assert b["choices"][0]["message"] == {
        "role": "assistant",
        "content": "This is a fake completion.",
    }
    # OpenAI-shape prompt total includes cache reads and writes once each.
    assert b["usage"]["prompt_tokens"] == 100 + 900 + 250
    assert b["usage"]["prompt_tokens_details"]["cached_tokens"] == 900


def test_async_adapters_match_sync(oai, ant):
    async def go():
        async with httpx.AsyncClient() as ac:
            r1 = await adapter_for("openai").asend(
                ac,
                REQ,
                upstream_model="u",
                gateway_model="g",
                secret="sk-good",
                base_url=oai.url,
                timeout=2,
            )
            r2 = await adapter_for("anthropic").asend(
                ac,
                REQ,
                upstream_model="u",
                gateway_model="g",
                secret="ant-good",
                base_url=ant.url,
                timeout=2,
            )
            return r1, r2

    r1, r2 = asyncio.run(go())
    assert r1.usage == CACHED
    assert r2.usage.cache_write_tokens == 250


# ----------------------------------------------------------------------------- translation


def test_messages_body_translates_system_tools_and_tool_results():
    req = {
        "messages": [
            {"role": "system", "content": "sys one"},
            {"role": "system", "content": [{"type": "text", "text": "sys two"}]},
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "rainy"},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "w",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": "required",
        "stop": "END",
        "max_tokens": 99,
        "temperature": 0.5,
    }
    body = to_messages_body(req, "claude-x")
    assert body["model"] == "claude-x"
    assert body["system"] == "sys one\n\nsys two"
    assert body["max_tokens"] == 99 and body["temperature"] == 0.5
    assert body["stop_sequences"] == ["END"]
    assert body["tool_choice"] == {"type": "any"}
    assert body["tools"][0]["input_schema"]["properties"]["city"]["type"] == "string"
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user"]  # tool result merged with the next user turn
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}
    ]
    assert body["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "call_1",
        "content": "rainy",
    }
    assert body["messages"][2]["content"][1] == {"type": "text", "text": "thanks"}


def test_tool_calls_come_back_in_openai_shape(oai, ant, client):
    req = {
        **REQ,
        "tools": [
            {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
        ],
        "tool_choice": "required",
    }
    for fake, secret in ((oai, "sk-good"), (ant, "ant-good")):
        res = send(fake, client, secret, req)
        choice = res.body["choices"][0]
        assert choice["finish_reason"] == "tool_calls", fake.api
        call = choice["message"]["tool_calls"][0]
        assert call["type"] == "function" and call["function"]["name"] == "lookup"
        assert json.loads(call["function"]["arguments"]) == {}


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_unknown_key_is_auth_error(api, oai, ant, client):
    fake = oai if api == "openai" else ant
    e = error_of(lambda: send(fake, client, "sk-wrong-key-123456"))
    assert (e.kind, e.http_status) == (AUTH, 401)
    assert e.error_type == ("invalid_api_key" if api == "openai" else "authentication_error")
    assert fake.served[-1].status == 401 and fake.served[-1].key == ""


def test_revoked_key_gets_401_body_like_the_real_api(oai, client):
    oai.revoke("proj_a")
    r = client.post(
        oai.url + "/chat/completions",
        json={"model": "x", **REQ},
        headers={"authorization": "Bearer sk-good"},
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "Incorrect API key provided" in r.json()["error"]["message"]
    assert "sk-good" not in r.text  # the real API masks the key


def test_rate_limit_retry_after_seconds_and_http_date(oai, ant, client):
    oai.add_fault("rate_limit", times=1, retry_after=7)
    e = error_of(lambda: send(oai, client, "sk-good"))
    assert (e.kind, e.http_status, e.retry_after_s) == (RATE_LIMITED, 429, 7.0)
    assert e.error_type == "rate_limit_exceeded"

    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    ant.add_fault("rate_limit", times=1, retry_after=when)
    e = error_of(lambda: send(ant, client, "ant-good"))
    assert e.kind == RATE_LIMITED and e.error_type == "rate_limit_error"
    assert 25 <= e.retry_after_s <= 31


def test_parse_retry_after_edge_cases():
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_context_length_errors_both_formats(oai, ant, client):
    oai.add_fault("context_length", times=1)
    e = error_of(lambda: send(oai, client, "sk-good"))
    assert (e.kind, e.http_status, e.error_type) == (CONTEXT_LENGTH, 400, "context_length_exceeded")
    ant.add_fault("context_length", times=1)
    e = error_of(lambda: send(ant, client, "ant-good"))
    assert (e.kind, e.http_status, e.error_type) == (CONTEXT_LENGTH, 400, "invalid_request_error")
    assert "prompt is too long" in e.message


def test_context_length_from_model_limit(client):
    huge = Usage(input_tokens=300_000, output_tokens=1)
    with FakeProvider(
        "anthropic", name="a", keys={"k": "w"}, models={"small": 200_000}, usage_fn=lambda b: huge
    ) as fp:
        e = error_of(lambda: send(fp, client, "k", model="small"))
        assert e.kind == CONTEXT_LENGTH and "300000 tokens > 200000" in e.message
        e = error_of(lambda: send(fp, client, "k", model="unknown"))
        assert (e.kind, e.http_status, e.error_type) == (BAD_REQUEST, 404, "not_found_error")


def test_plain_bad_request_is_not_context_length(oai, client):
    oai.add_fault("bad_request", times=1)
    e = error_of(lambda: send(oai, client, "sk-good"))
    assert (e.kind, e.http_status) == (BAD_REQUEST, 400)


def test_server_errors_and_anthropic_overloaded(oai, ant, client):
    oai.add_fault("server_error", times=1, status=502)
    e = error_of(lambda: send(oai, client, "sk-good"))
    assert (e.kind, e.http_status, e.error_type) == (SERVER, 502, "server_error")
    ant.add_fault("overloaded", times=1)
    e = error_of(lambda: send(ant, client, "ant-good"))
    assert (e.kind, e.http_status, e.error_type) == (SERVER, 529, "overloaded_error")


def test_timeout_and_connection_error(ant, client):
    ant.add_fault("timeout", times=1, delay_s=2.0)
    t = time.perf_counter()
    e = error_of(lambda: send(ant, client, "ant-good", timeout=0.2))
    assert e.kind == TIMEOUT and e.http_status is None
    # Gave up at the client's timeout, not when the stalled answer came (wide margin: CI load).
    assert time.perf_counter() - t < 1.5

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    e = error_of(
        lambda: adapter_for("openai").send(
            client,
            REQ,
            upstream_model="u",
            gateway_model="g",
            secret="x",
            base_url=f"http://127.0.0.1:{port}/v1",
            timeout=1,
        )
    )
    assert e.kind == CONNECT


def test_missing_anthropic_version_header_is_rejected_like_the_real_api(ant, client):
    r = client.post(
        ant.url + "/v1/messages", json={"model": "m", **REQ}, headers={"x-api-key": "ant-good"}
    )
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_non_json_success_is_a_server_error(client):
    # A 2xx that is not a completion must not be treated as served.
    with httpx.Client(
        transport=httpx.MockTransport(lambda req: httpx.Response(200, text="<html>"))
    ) as mc:
        e = error_of(
            lambda: adapter_for("openai").send(
                mc,
                REQ,
                upstream_model="u",
                gateway_model="g",
                secret="x",
                base_url="http://x/v1",
                timeout=1,
            )
        )
    assert e.kind == SERVER and e.error_type == "invalid_response"


def test_a_stream_answered_without_event_stream_is_a_server_error_sync_and_async():
    # A 2xx answer to a stream request that is not text/event-stream must not be read as one.
    import asyncio

    from routing_core.providers.base import open_stream, open_stream_sync

    def answer(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"not": "a stream"})

    args = ("http://x/v1/chat/completions", {}, {"stream": True}, 1.0, None, None)
    with httpx.Client(transport=httpx.MockTransport(answer)) as mc:
        e = error_of(lambda: open_stream_sync(mc, *args))
    assert e.kind == SERVER and e.error_type == "invalid_response"
    assert "application/json" in str(e)

    async def run_async() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as ac:
            await open_stream(ac, *args)

    e = error_of(lambda: asyncio.run(run_async()))
    assert e.kind == SERVER and e.error_type == "invalid_response"
