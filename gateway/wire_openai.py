"""The OpenAI Chat Completions wire on the client side of the gateway
(`POST /v1/chat/completions`): request bodies (with OpenRouter's `models`, `provider` and
`user` extensions) decoded into `Router.acomplete` / `Router.astream` keywords, answers and
stream chunks encoded back.

Only the Chat Completions parameters listed in `PASS_PARAMS` travel upstream: an unknown
field is refused (400) rather than forwarded, so a typo cannot silently change nothing and
a caller cannot smuggle fields to a provider.
"""

from __future__ import annotations

import json
import math
import time
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from gateway.errors import GatewayError
from routing_core.providers.openai import usage_to_openai
from routing_core.schema import Cost, Usage

# Request fields forwarded to the provider as they are.
PASS_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "stop",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "reasoning_effort",
        "metadata",
        "service_tier",
    }
)
# Fields the gateway itself reads.
OWN_FIELDS = frozenset(
    {
        "model",
        "models",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "tools",
        "stream",
        "stream_options",
        "provider",
        "route",
        "zdr",
        "transforms",
        "usage",
    }
)
MAX_MODELS = 32
MAX_ID_CHARS = 256


def _str_field(body: dict[str, Any], name: str) -> str | None:
    v = body.get(name)
    if v is None:
        return None
    if not isinstance(v, str) or not v or len(v) > MAX_ID_CHARS:
        raise GatewayError(400, f"{name} must be a non-empty string of at most {MAX_ID_CHARS}")
    return v


def positive_int(v: Any, name: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0 or v > 10_000_000:
        raise GatewayError(400, f"{name} must be a positive integer (at most 10,000,000)")
    return v


def check_numbers(body: dict[str, Any]) -> None:
    """Sampling numbers must be finite numbers (JSON NaN/Infinity are refused)."""
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        v = body.get(name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise GatewayError(400, f"{name} must be a finite number")


def decode_chat(body: Any) -> tuple[dict[str, Any], bool, bool]:
    """A Chat Completions request -> (router keywords, stream?, include usage chunk?)."""
    if not isinstance(body, dict):
        raise GatewayError(400, "the request body must be a JSON object")
    unknown = set(body) - PASS_PARAMS - OWN_FIELDS
    if unknown:
        raise GatewayError(
            400,
            f"unknown request field(s) {[u[:64] for u in sorted(unknown)[:10]]}; the gateway "
            "forwards only the "
            "Chat Completions parameters it knows",
        )
    model = _str_field(body, "model")
    models = body.get("models")
    if models is not None and (
        not isinstance(models, list)
        or not 0 < len(models) <= MAX_MODELS
        or not all(isinstance(m, str) and 0 < len(m) <= MAX_ID_CHARS for m in models)
    ):
        raise GatewayError(400, f"models must be a list of 1 to {MAX_MODELS} model ids")
    if model is None and not models:
        raise GatewayError(400, "give model (or models)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise GatewayError(400, "messages must be a non-empty list of {role, content}")
    max_tokens = positive_int(body.get("max_tokens"), "max_tokens")
    if max_tokens is None:
        max_tokens = positive_int(body.get("max_completion_tokens"), "max_completion_tokens")
    tools = body.get("tools")
    if tools is not None and (
        not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)
    ):
        raise GatewayError(400, "tools must be a list of tool objects")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise GatewayError(400, "stream must be true or false")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise GatewayError(400, "stream_options must be an object")
    include_usage = bool(opts and opts.get("include_usage"))
    provider = body.get("provider")
    if provider is not None and not isinstance(provider, dict):
        raise GatewayError(400, "provider must be an object (only, order, ignore, ...)")
    zdr = body.get("zdr", False)
    if not isinstance(zdr, bool):
        raise GatewayError(400, "zdr must be true or false")
    check_numbers(body)
    member = _str_field(body, "user")
    kw: dict[str, Any] = {
        "model": model,
        "models": models,
        "messages": messages,
        "max_tokens": max_tokens,
        "tools": tools or None,
        "member_id": member,
        "zdr": zdr,
        "provider": provider,
    }
    for k in PASS_PARAMS:
        if k in body and body[k] is not None:
            kw[k] = body[k]
    return kw, stream, include_usage


def usage_block(usage: Usage, cost: Cost) -> dict[str, Any]:
    """OpenAI `usage` plus the cost layers (decimal strings: money is never a float)."""
    u = usage_to_openai(usage)
    u["cost"] = f"{cost.total_usd:f}"
    u["cost_details"] = cost.as_dict()
    return u


def encode_completion(body: dict[str, Any], usage: Usage, cost: Cost) -> dict[str, Any]:
    """The router's `chat.completion` body (its `model` already the gateway slug) with
    `usage` carrying the cost layers."""
    out = dict(body)
    out["usage"] = usage_block(usage, cost)
    return out


class ChunkEncoder:
    """`chat.completion.chunk` SSE lines for one stream."""

    def __init__(self, request_id: str, model: str, provider: str) -> None:
        self.base = {
            "id": request_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "provider": provider,
        }
        self._text_pre: bytes | None = None
        self._text_post = b""

    def _line(self, extra: dict[str, Any]) -> bytes:
        return (
            b"data: "
            + json.dumps({**self.base, **extra}, separators=(",", ":")).encode()
            + (b"\n\n")
        )

    def role(self) -> bytes:
        return self._line(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ]
            }
        )

    def text(self, text: str) -> bytes:
        """The same bytes as `_line` of the content delta, from a template: every content
        chunk of a stream goes through here, and only its text changes."""
        pre = self._text_pre
        if pre is None:
            line = self._line(
                {"choices": [{"index": 0, "delta": {"content": "@"}, "finish_reason": None}]}
            )
            pre, post = line.rsplit(b'"@"', 1)  # the content is the last string
            self._text_pre, self._text_post = pre, post
        return pre + _quote(text).encode() + self._text_post

    def tool_call(self, index: int, call_id: str | None, name: str | None, args: str) -> bytes:
        call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
        if call_id is not None:
            call["id"] = call_id
            call["type"] = "function"
        if name is not None:
            call["function"]["name"] = name
        return self._line(
            {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
        )

    def finish(self, reason: str) -> bytes:
        return self._line({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})

    def usage(self, usage: Usage, cost: Cost) -> bytes:
        return self._line({"choices": [], "usage": usage_block(usage, cost)})

    def error(self, code: int, message: str) -> bytes:
        """A mid-stream failure (OpenRouter's convention: an `error` object in a chunk)."""
        return self._line(
            {
                "error": {"code": code, "message": message, "type": "upstream_error"},
                "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
            }
        )

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"
