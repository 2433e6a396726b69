"""The gateway's stream chunk encoders: the fast template path for content chunks gives
exactly the bytes `json.dumps` gives, for any text (quotes, backslashes, control
characters, non-ASCII, surrogate pairs, the template's own marker)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

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
