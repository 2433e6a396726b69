"""Anthropic Messages (`POST {base_url}/v1/messages`, `x-api-key`, `anthropic-version`).

Translates the internal (OpenAI chat) request form to Messages — system prompts move to
the top-level `system`, tool calls and tool results become `tool_use` / `tool_result`
blocks, consecutive same-role turns merge — and the answer back to an OpenAI-style
completion. Anthropic reports `input_tokens` (uncached), `cache_read_input_tokens` and
`cache_creation_input_tokens` apart, so usage maps straight onto the disjoint buckets.
"""

from __future__ import annotations

import json
from typing import Any

from routing_core.providers.base import (
    BAD_REQUEST,
    CONTEXT_LENGTH,
    Adapter,
    ProviderResult,
    StreamParser,
    stream_error,
)
from routing_core.providers.openai import usage_to_openai
from routing_core.schema import Usage
from routing_core.streaming import Finish, TextDelta, ToolCallDelta
from routing_core.usage import (
    INVALID,
    STATE_INVALID,
    STATE_MISSING,
    STATE_OK,
    STATE_PARTIAL,
    read_count,
)

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # Messages requires max_tokens; the router normally sets it

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}
# Sampling parameters with the same meaning on both sides.
_PASS_THROUGH = ("temperature", "top_p", "top_k")


def parse_anthropic_usage(u: Any) -> tuple[Usage, str]:
    """Anthropic `usage` -> disjoint buckets (already disjoint on the wire) and the usage
    state (ok | missing | invalid; an invalid count is `INVALID`)."""
    if not isinstance(u, dict) or ("input_tokens" not in u and "output_tokens" not in u):
        return Usage(), STATE_MISSING
    inp = read_count(u.get("input_tokens"))
    cr = read_count(u.get("cache_read_input_tokens"))
    cw = read_count(u.get("cache_creation_input_tokens"))
    out = read_count(u.get("output_tokens"))
    state = STATE_OK
    if inp is None or cr is None or cw is None:
        inp, cr, cw, state = INVALID, 0, 0, STATE_INVALID
    if out is None:
        out, state = INVALID, STATE_INVALID
    # Messages does not split thinking out of output_tokens.
    return Usage(inp, cr, cw, out, 0), state


def anthropic_usage(u: dict[str, Any] | None) -> Usage:
    """Anthropic `usage` -> disjoint buckets; an invalid count reads 0 (unbounded view)."""
    usage, _ = parse_anthropic_usage(u)
    return Usage(*(max(0, v) for v in usage.as_dict().values()))


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content (string or parts) -> Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[dict[str, Any]] = []
    for part in content:
        ptype = part.get("type")
        if ptype == "text":
            out.append({"type": "text", "text": part.get("text", "")})
        elif ptype == "image_url":
            out.append(_image_block(part))
        else:
            out.append(part)  # already an Anthropic block (e.g. with cache_control)
    return out


def _system_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or () if p.get("type") == "text")


def to_messages_body(request: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """The internal request form -> an Anthropic Messages request body."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)  # Messages wants alternating turns
        else:
            messages.append({"role": role, "content": blocks})

    for m in request.get("messages") or ():
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(_system_text(m.get("content")))
        elif role == "user":
            push("user", _blocks(m.get("content")))
        elif role == "assistant":
            blocks = _blocks(m.get("content"))
            for call in m.get("tool_calls") or ():
                fn = call.get("function") or {}
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    args = {"_raw": fn.get("arguments")}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": fn.get("name", ""),
                        "input": args,
                    }
                )
            push("assistant", blocks)
        elif role == "tool":
            content = m.get("content")
            push(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": m.get("tool_call_id", ""),
                        "content": content if isinstance(content, str) else _blocks(content),
                    }
                ],
            )

    body: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": request.get("max_tokens")
        or request.get("max_completion_tokens")
        or DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        body["system"] = "\n\n".join(system)
    for k in _PASS_THROUGH:
        if request.get(k) is not None:
            body[k] = request[k]
    stop = request.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.get("user"):
        body["metadata"] = {"user_id": str(request["user"])}
    tools = request.get("tools")
    if tools:
        body["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters")
                or {"type": "object", "properties": {}},
            }
            for t in tools
            if t.get("type", "function") == "function"
        ]
    choice = request.get("tool_choice")
    if choice is not None and tools:
        if choice == "auto":
            body["tool_choice"] = {"type": "auto"}
        elif choice == "required":
            body["tool_choice"] = {"type": "any"}
        elif choice == "none":
            body["tool_choice"] = {"type": "none"}
        elif isinstance(choice, dict) and choice.get("function"):
            body["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    return body


def to_chat_completion(data: dict[str, Any], gateway_model: str) -> ProviderResult:
    """An Anthropic Messages answer -> the OpenAI-style completion callers get."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in data["content"]:
        btype = block.get("type")
        if btype == "text":
            texts.append(block.get("text", ""))
        elif btype == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": json.dumps(block.get("input") or {}),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    usage, state = parse_anthropic_usage(data.get("usage"))
    body = {
        "id": data.get("id", ""),
        "object": "chat.completion",
        "created": 0,
        "model": gateway_model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _STOP_REASONS.get(data.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": usage_to_openai(usage),
    }
    return ProviderResult(body=body, usage=usage, usage_state=state)


class AnthropicAdapter(Adapter):
    api = "anthropic"

    def prepare(
        self, request: dict[str, Any], upstream_model: str, secret: str, base_url: str
    ) -> tuple[str, dict[str, str], dict[str, Any]]:
        headers = {"x-api-key": secret, "anthropic-version": ANTHROPIC_VERSION}
        return base_url + "/v1/messages", headers, to_messages_body(request, upstream_model)

    def parse_ok(self, data: dict[str, Any], gateway_model: str) -> ProviderResult:
        return to_chat_completion(data, gateway_model)

    def prepare_stream(
        self, request: dict[str, Any], upstream_model: str, secret: str, base_url: str
    ) -> tuple[str, dict[str, str], dict[str, Any]]:
        url, headers, body = self.prepare(request, upstream_model, secret, base_url)
        body["stream"] = True
        return url, headers, body

    def stream_parser(self) -> StreamParser:
        return AnthropicStreamParser()

    def refine_error(
        self, kind: str, status: int, err: dict[str, Any], message: str
    ) -> tuple[str, str]:
        low = message.lower()
        if kind == BAD_REQUEST and (
            "prompt is too long" in low or "exceed context limit" in low or "context window" in low
        ):
            kind = CONTEXT_LENGTH
        return kind, str(err.get("type") or f"http_{status}")


class AnthropicStreamParser(StreamParser):
    """Messages stream events -> neutral events. `message_start` carries the input usage
    (and an initial output count), `message_delta` the stop reason and the cumulative
    output usage, `message_stop` ends it; `ping` is ignored and an `error` event breaks
    the stream. Tool calls are numbered in the order their blocks start."""

    def __init__(self) -> None:
        self.done = False
        self.finished = False
        self.out_chars = 0
        self._start: dict[str, Any] = {}
        self._final: dict[str, Any] = {}
        self._tool_of_block: dict[int, int] = {}

    def feed(self, event: str | None, data: str) -> list[Any]:
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise stream_error("a stream event is not a JSON object")
        etype = obj.get("type") or event
        if etype == "content_block_delta":
            delta = obj.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    self.out_chars += len(text)
                    return [TextDelta(text)]
                return []
            if dtype == "input_json_delta":
                piece = delta.get("partial_json")
                piece = piece if isinstance(piece, str) else ""
                idx = self._tool_of_block.get(obj.get("index"))  # type: ignore[arg-type]
                self.out_chars += len(piece)
                return [] if idx is None else [ToolCallDelta(idx, None, None, piece)]
            for k in ("thinking", "signature"):  # billed as output, not shown
                v = delta.get(k)
                if isinstance(v, str):
                    self.out_chars += len(v)
            return []
        if etype == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") == "tool_use":
                idx = len(self._tool_of_block)
                bi = obj.get("index")
                self._tool_of_block[bi if isinstance(bi, int) else -1 - idx] = idx
                name = block.get("name") if isinstance(block.get("name"), str) else ""
                self.out_chars += len(name)
                bid = block.get("id")
                return [ToolCallDelta(idx, bid if isinstance(bid, str) else None, name, "")]
            text = block.get("text")
            if block.get("type") == "text" and isinstance(text, str) and text:
                self.out_chars += len(text)
                return [TextDelta(text)]
            return []
        if etype == "message_start":
            msg = obj.get("message")
            u = msg.get("usage") if isinstance(msg, dict) else None
            if isinstance(u, dict):
                self._start = u
            return []
        if etype == "message_delta":
            u = obj.get("usage")
            if isinstance(u, dict):
                self._final.update(u)
            reason = (obj.get("delta") or {}).get("stop_reason")
            if isinstance(reason, str) and reason:
                self.finished = True
                return [Finish(_STOP_REASONS.get(reason, "stop"))]
            return []
        if etype == "message_stop":
            self.done = True
            return []
        if etype == "error":
            err = obj.get("error") if isinstance(obj.get("error"), dict) else {}
            raise stream_error(
                f"provider error mid-stream: {err.get('message') or 'error event'}",
                str(err.get("type") or "stream_error"),
            )
        return []  # ping, content_block_stop, and event types added later

    def usage(self) -> tuple[Usage, str]:
        """Input from message_start (a later message_delta may restate it), output from
        the last message_delta; without that the output is not final (partial)."""
        merged = {**self._start, **self._final}
        if not merged:
            return Usage(), STATE_MISSING
        usage, state = parse_anthropic_usage(merged)
        if state == STATE_MISSING:
            return usage, state
        if "output_tokens" not in self._final:
            return usage, STATE_PARTIAL
        return usage, state
