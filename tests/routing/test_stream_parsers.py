"""The streaming building blocks as pure functions: the server-sent-events decoder (any
chunking gives the same events; CRLF, comments, multi-line data; an endless line is
refused) and both wire parsers (exact event shapes -> neutral events and usage; any
hostile JSON either parses or raises one of the errors the stream turns into
`upstream_interrupted`, never anything else)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing_core.providers.anthropic import AnthropicStreamParser
from routing_core.providers.base import MAX_SSE_LINE, ProviderError, SSEDecoder
from routing_core.providers.openai import OpenAIStreamParser
from routing_core.schema import Usage
from routing_core.streaming import Finish, TextDelta, ToolCallDelta

# What UpstreamStream turns into a stream error (anything else would be a traceback).
HANDLED = (ProviderError, ValueError, TypeError, KeyError, AttributeError, IndexError)

SAMPLE = (
    b": keep-alive comment\r\n\r\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"event: ping\ndata: {}\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ("message_start", '{"a": 1}'),
    (None, "line one\nline two"),
    ("ping", "{}"),
    (None, "[DONE]"),
]


def test_sse_decoder_reads_fields_comments_and_crlf():
    assert SSEDecoder().feed(SAMPLE) == EXPECTED


@given(st.lists(st.integers(0, len(SAMPLE)), max_size=12))
def test_sse_decoder_gives_the_same_events_for_any_chunking(cuts):
    dec = SSEDecoder()
    out = []
    points = sorted(set(cuts))
    prev = 0
    for p in [*points, len(SAMPLE)]:
        out.extend(dec.feed(SAMPLE[prev:p]))
        prev = p
    assert out == EXPECTED


def test_sse_decoder_refuses_an_endless_line():
    dec = SSEDecoder()
    with pytest.raises(ValueError, match="over"):
        for _ in range(MAX_SSE_LINE // 65536 + 2):
            dec.feed(b"x" * 65536)


def _chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
    return json.dumps(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
    )


def test_openai_parser_text_tools_finish_and_usage():
    p = OpenAIStreamParser()
    evs = []
    for data in [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),  # fmt: skip
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        _chunk({}, "tool_calls"),
        json.dumps(
            {
                "choices": [],
                "usage": {
                    "prompt_tokens": 30,
                    "completion_tokens": 9,
                    "prompt_tokens_details": {"cached_tokens": 10},
                    "completion_tokens_details": {"reasoning_tokens": 2},
                },
            }
        ),
        "[DONE]",
    ]:
        evs.extend(p.feed(None, data))
    assert evs == [
        TextDelta("Hel"),
        TextDelta("lo"),
        ToolCallDelta(0, "call_1", "f", ""),
        ToolCallDelta(0, None, None, '{"a":'),
        ToolCallDelta(0, None, None, "1}"),
        Finish("tool_calls"),
    ]
    assert p.done and p.finished
    assert p.usage() == (Usage(20, 10, 0, 9, 2), "ok")
    assert p.out_chars == len("Hello") + len("f") + len('{"a":1}')


def test_openai_parser_error_chunk_breaks_the_stream():
    p = OpenAIStreamParser()
    with pytest.raises(ProviderError) as e:
        p.feed(None, json.dumps({"error": {"message": "overloaded", "code": "server_error"}}))
    assert e.value.error_type == "server_error"


def _ev(etype: str, **fields: Any) -> tuple[str, str]:
    return etype, json.dumps({"type": etype, **fields})


def test_anthropic_parser_exact_event_sequence():
    p = AnthropicStreamParser()
    seq = [
        _ev(
            "message_start",
            message={
                "id": "msg_1",
                "usage": {"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 1},
            },
        ),
        _ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        _ev("ping"),
        _ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"}),
        _ev("content_block_stop", index=0),
        _ev(
            "content_block_start",
            index=1,
            content_block={"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        ),
        _ev(
            "content_block_delta",
            index=1,
            delta={"type": "input_json_delta", "partial_json": '{"a"'},
        ),
        _ev(
            "content_block_delta",
            index=1,
            delta={"type": "input_json_delta", "partial_json": ":1}"},
        ),
        _ev("content_block_stop", index=1),
        _ev("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 17}),
        _ev("message_stop"),
    ]
    evs = []
    assert p.usage()[1] == "missing"
    for name, data in seq:
        evs.extend(p.feed(name, data))
        if name == "message_start":
            assert p.usage()[1] == "partial"  # input known, output not final yet
    assert evs == [
        TextDelta("Hi"),
        ToolCallDelta(0, "toolu_1", "f", ""),
        ToolCallDelta(0, None, None, '{"a"'),
        ToolCallDelta(0, None, None, ":1}"),
        Finish("tool_calls"),
    ]
    assert p.done and p.usage() == (Usage(25, 5, 0, 17, 0), "ok")


def test_anthropic_error_event_breaks_the_stream():
    p = AnthropicStreamParser()
    with pytest.raises(ProviderError) as e:
        p.feed("error", json.dumps({"type": "error", "error": {"type": "overloaded_error"}}))
    assert e.value.error_type == "overloaded_error"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
KEYS = ["type", "choices", "delta", "usage", "index", "content_block", "message", "error"]
shaped = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5)


@settings(max_examples=300, deadline=None)
@given(obj=st.one_of(json_values, shaped), event=st.sampled_from([None, "message_start",
       "content_block_start", "content_block_delta", "message_delta", "error", "ping"]))  # fmt: skip
def test_hostile_stream_data_never_escapes_as_another_error(obj, event):
    for parser in (OpenAIStreamParser(), AnthropicStreamParser()):
        data = json.dumps(obj)
        if isinstance(obj, dict) and event and isinstance(parser, AnthropicStreamParser):
            data = json.dumps({**obj, "type": event})
        try:
            evs = parser.feed(event, data)
        except HANDLED:
            continue
        assert all(isinstance(e, TextDelta | ToolCallDelta | Finish) for e in evs)
        usage, state = parser.usage()
        assert state in ("ok", "missing", "invalid", "partial")
        assert all(isinstance(v, int) for v in usage.as_dict().values())
