"""Streaming through `byok-ledger serve` with the real SDKs: OpenAI SSE and Anthropic events,
both against both provider wires, tools, and the three ways a stream ends early (client
disconnect, upstream drop after N chunks, upstream stall past the deadline): one record
each with the right status, usage and cost, and the budget settled."""

from __future__ import annotations

import json
import re
import socket
import time
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest
from gatewaykit import SECRETS, record_of

MSG = [{"role": "user", "content": "tell me a story"}]


def oa(server, key="app"):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=SECRETS[key], max_retries=0)


def an(server, key="app"):
    return anthropic.Anthropic(base_url=server.url, api_key=SECRETS[key], max_retries=0)


def in_flight(server, key_id: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    pattern = r'byok_gateway_budget_in_flight_usd\{scope="api_key",scope_id="KEY"\} (\S+)'
    m = re.search(pattern.replace("KEY", key_id), text)
    assert m, text[:500]
    return float(m.group(1))


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_openai_sdk_stream_with_usage_chunk(gw, provider):
    fleet, logs, server = gw
    stream = oa(server).chat.completions.create(
        model="m/a",
        messages=MSG,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"provider": {"only": [provider]}},
    )
    text, usage, rid = [], None, None
    for chunk in stream:
        rid = chunk.id
        assert chunk.model == "m/a"
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(text) and usage is not None
    rec = record_of(logs, rid)
    assert rec["status"] == "ok" and rec["provider"] == provider and rec["stream"] is True
    assert rec["usage"]["output_tokens"] == usage.completion_tokens > 0
    assert usage.model_extra["cost_details"] == rec["cost"]
    assert rec["ttfb_ms"] is not None and rec["ttfb_ms"] <= rec["duration_ms"]


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_anthropic_sdk_stream(gw, provider):
    fleet, logs, server = gw
    model = "m/b" if provider == "p1" else "m/c"
    with an(server).messages.stream(model=model, max_tokens=100, messages=MSG) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text and final.content[0].text == text
    rec = record_of(logs, final.id)
    assert rec["status"] == "ok" and rec["provider"] == provider and rec["stream"] is True
    assert rec["usage"]["output_tokens"] == final.usage.output_tokens > 0
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("provider", ["p1", "p2"])
def test_streamed_tool_calls_on_both_wires(gw, provider):
    fleet, logs, server = gw
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    args, name = [], None
    for chunk in oa(server).chat.completions.create(
        model="m/a",
        messages=MSG,
        tools=tools,
        tool_choice="required",
        stream=True,
        extra_body={"provider": {"only": [provider]}},
    ):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = tc.function.name or name
            args.append(tc.function.arguments or "")
    assert name == "lookup"
    json.loads("".join(args))
    with an(server).messages.stream(
        model="m/a",
        max_tokens=100,
        messages=MSG,
        tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any"},
    ) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert any(b.type == "tool_use" and b.name == "lookup" for b in final.content)


def test_upstream_drop_after_n_chunks(gw):
    fleet, logs, server = gw
    fleet["p1"].add_fault("stream_drop", after=3)
    rid = None
    with pytest.raises(openai.APIError) as e:
        for chunk in oa(server, "pool").chat.completions.create(
            model="m/b", messages=MSG, stream=True
        ):
            rid = chunk.id
    assert not isinstance(e.value, openai.APIConnectionError), e.value
    assert "interrupted" in str(e.value)
    rec = record_of(logs, rid)
    assert rec["status"] == "error" and rec["error_code"] == 502, rec
    assert rec["error_reason"] == "upstream_interrupted"
    assert rec["usage_source"] == "estimated" and rec["usage"]["output_tokens"] > 0
    # an interrupted stream is still billed (BYOK or, while k1 rests, shared capacity)
    billed = Decimal(rec["cost"]["provider_usd"]) + Decimal(rec["cost"]["platform_credits_usd"])
    assert billed > 0, rec
    assert in_flight(server, "pool") == 0.0


def test_upstream_stall_past_the_deadline(gw):
    fleet, logs, server = gw
    # after 4 events: past message_start, ping and the first text delta, so the first
    # byte has reached the client and there is no failover any more
    fleet["p2"].add_fault("stream_stall", after=4, delay_s=6)
    t = time.monotonic()
    rid = None
    with (
        pytest.raises(anthropic.APIError),
        an(server, "pool").messages.stream(model="m/c", max_tokens=50, messages=MSG) as s,
    ):
        for ev in s:
            if ev.type == "message_start":
                rid = ev.message.id
    assert time.monotonic() - t < 5.5  # the provider's 2 s timeout ended it, not the stall
    rec = record_of(logs, rid)
    assert rec["status"] == "error" and rec["error_code"] == 504
    assert rec["error_reason"] == "upstream_interrupted"
    assert in_flight(server, "pool") == 0.0


def test_client_disconnect_mid_stream_is_logged_client_closed(gw):
    fleet, logs, server = gw
    fleet["p1"].add_fault("stream_stall", after=2, delay_s=8)
    body = json.dumps({"model": "m/b", "messages": MSG, "stream": True}).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {SECRETS['pool']}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    got = b""
    while got.count(b"data: ") < 2:  # our role chunk and the first text delta
        got += s.recv(65536)
    s.close()  # the client goes away while the upstream stalls
    rid = re.search(rb'"id":"(req_[0-9a-f]+)"', got).group(1).decode()
    t = time.monotonic()
    rec = record_of(logs, rid, wait_s=5)
    assert time.monotonic() - t < 4  # noticed at once, not when the stall ends
    assert rec["status"] == "error" and rec["error_code"] == 499
    assert rec["error_reason"] == "client_closed"
    assert rec["usage"]["output_tokens"] > 0 and rec["usage_source"] == "estimated"
    assert in_flight(server, "pool") == 0.0


def test_stall_before_the_first_byte_fails_over_then_fails_cleanly(gw):
    fleet, logs, server = gw
    fleet["p2"].add_fault("stream_stall", after=1, delay_s=6)
    with pytest.raises(anthropic.APIStatusError) as e:
        an(server, "pool").messages.create(model="m/c", max_tokens=50, messages=MSG, stream=True)
    err = e.value.body["error"]
    assert e.value.status_code == 503 and err["code"] == 503
    attempts = err["metadata"]["attempts"]
    # every route tried (the BYOK key, unless an earlier test left it resting, then shared
    # capacity) stalled before its first event
    assert attempts and all(a["status"] == "timeout" for a in attempts)
    assert attempts[-1]["credential"] == "shared"
    rec = record_of(logs, err["metadata"]["request_id"])
    assert rec["error_code"] == 503 and rec["attempts"] == attempts
    assert in_flight(server, "pool") == 0.0


def test_stream_errors_before_the_first_byte_are_plain_envelopes(gw):
    fleet, logs, server = gw
    with pytest.raises(openai.APIStatusError) as e:
        oa(server, "lim").chat.completions.create(model="m/a", messages=MSG, stream=True)
    assert e.value.status_code == 402
    fleet["p1"].add_fault("server_error", status=500, times=1)
    # failover before the first byte: p1 fails, the stream is served by p2
    chunks = list(oa(server).chat.completions.create(model="m/a", messages=MSG, stream=True))
    rec = record_of(logs, chunks[0].id)
    assert rec["status"] == "ok" and rec["attempts"][-1]["status"] == "ok"
    if rec["attempts"][0]["provider"] == "p1":  # p1 first (not resting): it failed, p2 served
        assert rec["attempts"][0]["http_status"] == 500 and rec["provider"] == "p2"
