"""The gateway's stream chunk encoders: the fast template path for content chunks gives
exactly the bytes `json.dumps` gives, for any text (quotes, backslashes, control
characters, non-ASCII, surrogate pairs, the template's own marker)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.wire_anthropic import EventEncoder
from gateway.wire_openai import ChunkEncoder


def reference(enc: ChunkEncoder, text: str) -> bytes:
    obj = {
        **enc.base,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


@given(
    rid=st.text(max_size=20),
    model=st.text(max_size=20),
    provider=st.text(max_size=20),
    texts=st.lists(st.text(max_size=50), min_size=1, max_size=4),
)
def test_content_chunks_are_the_json_encoding(rid, model, provider, texts):
    enc = ChunkEncoder(rid, model, provider)
    for text in texts:
        got = enc.text(text)
        assert got == reference(enc, text)
        obj = json.loads(got[len(b"data: ") : -2])
        assert obj["choices"][0]["delta"]["content"] == text


def test_marker_in_ids_and_text_does_not_confuse_the_template():
    enc = ChunkEncoder("@", "@", '"@"')
    for text in ("@", '"@"', "", "a\u2028b\x00\ud83d\ude00"):
        assert enc.text(text) == reference(enc, text)


def anthropic_reference(index: int, text: str) -> bytes:
    data = {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "text_delta", "text": text},
    }
    return (
        f"event: content_block_delta\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
    )


@given(texts=st.lists(st.text(max_size=50), min_size=1, max_size=5), tool_at=st.integers(0, 5))
def test_anthropic_text_deltas_are_the_json_encoding(texts, tool_at):
    """Text deltas (block index included, also after a tool-call block closed the text
    block) are the bytes json.dumps gives for the event."""
    enc = EventEncoder("msg_1", "m/x")
    enc.start()
    for i, text in enumerate(texts):
        if i == tool_at:
            enc.tool_call(0, "call_1", "f", "{}")
        out = enc.text(text)
        delta = anthropic_reference(enc.block, text)
        assert out.endswith(delta)
        assert out == delta or out.startswith(b"event: content_block_st")
        data = json.loads(delta.split(b"data: ", 1)[1])
        assert data["delta"]["text"] == text
