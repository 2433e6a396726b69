"""Translation both ways, streaming included, at the library level: an Anthropic Messages
request (decoded as the gateway does) streamed by an OpenAI provider and by an Anthropic
one, and an OpenAI-form request likewise; the router's neutral events, re-encoded in
either wire format by the gateway's encoders, parse back (with the router's own wire
parsers) into the same events. So a client on either wire sees the same answer whichever
provider kind served it."""

from __future__ import annotations

import asyncio

import pytest

from gateway import wire_anthropic, wire_openai
from routing_core.providers.anthropic import AnthropicStreamParser
from routing_core.providers.base import SSEDecoder
from routing_core.providers.openai import OpenAIStreamParser
from routing_core.streaming import Finish, StreamUsage, TextDelta, ToolCallDelta

TOOLS_MODELS = [
    {
        "id": "m/a",
        "endpoints": [
            {"provider": p, "upstream_model": up, "supports": ["tools"],
             "price": {"input": "1", "output": "2"}}
            for p, up in (("p1", "a-1"), ("p2", "a-2"))
        ],
    }
]  # fmt: skip
ANTHROPIC_REQUEST = {
    "model": "m/a",
    "max_tokens": 64,
    "system": "Be brief.",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]}],
}
TOOL = {"name": "lookup", "description": "look up", "input_schema": {"type": "object"}}


def reparse(data: bytes, parser) -> list:
    dec = SSEDecoder()
    out = []
    for event, payload in dec.feed(data):
        out.extend(parser.feed(event, payload))
    return out


def content(events: list) -> list:
    """The events a client sees (usage is re-encoded with cost fields, compared apart)."""
    return [e for e in events if isinstance(e, TextDelta | ToolCallDelta | Finish)]


async def stream_and_encode(router, kw: dict, provider: str) -> tuple[list, bytes, bytes]:
    stream = await router.astream(api_key_id="app", provider={"only": [provider]}, **kw)
    events = []
    async with stream:
        async for ev in stream:
            events.append(ev)
    oa = wire_openai.ChunkEncoder(stream.request_id, stream.model, stream.provider)
    an = wire_anthropic.EventEncoder(stream.request_id, stream.model)
    o, a = [oa.role()], [an.start()]
    for ev in events:
        if isinstance(ev, TextDelta):
            o.append(oa.text(ev.text))
            a.append(an.text(ev.text))
        elif isinstance(ev, ToolCallDelta):
            o.append(oa.tool_call(ev.index, ev.id, ev.name, ev.arguments))
            a.append(an.tool_call(ev.index, ev.id, ev.name, ev.arguments))
        elif isinstance(ev, Finish):
            o.append(oa.finish(ev.reason))
            an.finish(ev.reason)
        elif isinstance(ev, StreamUsage):
            o.append(oa.usage(ev.usage, ev.cost))
            a.append(an.end(ev.usage, ev.cost))
    o.append(b"data: [DONE]\n\n")
    return events, b"".join(o), b"".join(a)


@pytest.mark.parametrize("provider", ["p1", "p2"])
@pytest.mark.parametrize("tools", [False, True])
def test_anthropic_request_streams_the_same_answer_on_either_wire(
    small_cfg, small_fleet, make_router, logged, provider, tools
):
    cfg = small_cfg(models=TOOLS_MODELS)
    body = dict(ANTHROPIC_REQUEST)
    if tools:
        body.update(tools=[TOOL], tool_choice={"type": "any"})
    kw, stream = wire_anthropic.decode_messages({**body, "stream": True})
    assert stream is True
    router = make_router(cfg, small_fleet)
    loop = asyncio.new_event_loop()
    try:
        events, openai_bytes, anthropic_bytes = loop.run_until_complete(
            stream_and_encode(router, kw, provider)
        )
        loop.run_until_complete(router.aclose())
    finally:
        loop.close()
    if tools:
        calls = [e for e in events if isinstance(e, ToolCallDelta)]
        assert calls and calls[0].name == "lookup"
        assert "".join(c.arguments for c in calls) == "{}"
        assert Finish("tool_calls") in events
    else:
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text == "This is a fake completion."
    want = content(events)
    openai_back = reparse(openai_bytes, OpenAIStreamParser())
    anthropic_parser = AnthropicStreamParser()
    anthropic_back = reparse(anthropic_bytes, anthropic_parser)
    assert content(openai_back) == want
    # Anthropic's wire has no tool-call index or id repeat: compare pieces and names.
    assert [type(e) for e in content(anthropic_back)] == [type(e) for e in want]
    assert "".join(e.text for e in anthropic_back if isinstance(e, TextDelta)) == "".join(
        e.text for e in want if isinstance(e, TextDelta)
    )
    assert anthropic_parser.done
    usage, state = anthropic_parser.usage()
    assert state == "ok" and usage.output_tokens == events[-1].usage.output_tokens
    (rec,) = logged(router)
    assert rec["status"] == "ok" and rec["provider"] == provider and rec["stream"] is True
    # The system prompt reached the provider (translated to its wire).
    assert rec["usage"]["input_tokens"] == small_fleet[provider].served_ok()[0].usage.input_tokens
