"""The Anthropic Messages wire on the client side of the gateway (`POST /v1/messages`):
request bodies decoded into the router's OpenAI-style internal form (system prompt, content
blocks, tool_use / tool_result, tools, tool_choice), answers encoded back into a `message`
and streams into Anthropic's event sequence (message_start, content_block_start/delta/stop,
message_delta, message_stop).

`metadata.user_id` is the member id. Unknown top-level fields are refused (400).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from gateway.errors import GatewayError
from gateway.wire_openai import check_numbers, positive_int
from routing_core.schema import Cost, Usage

KNOWN = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
    }
)
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str):
                parts.append(b["text"])
            elif isinstance(b, str):
                parts.append(b)
        return "".join(parts)
    if content is None:
        return ""
    raise GatewayError(400, f"{where} must be a string or a list of text blocks")


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    src = block.get("source")
    if not isinstance(src, dict):
        raise GatewayError(400, f"{where}.source must be an object")
    if src.get("type") == "base64":
        url = f"data:{src.get('media_type', 'image/png')};base64,{src.get('data', '')}"
    elif src.get("type") == "url" and isinstance(src.get("url"), str):
        url = src["url"]
    else:
        raise GatewayError(400, f"{where}.source.type must be base64 or url")
    return {"type": "image_url", "image_url": {"url": url}}


def _convert_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise GatewayError(400, "messages must be a non-empty list of {role, content}")
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise GatewayError(400, f"{where}.role must be user or assistant")
        role, content = m["role"], m.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise GatewayError(400, f"{where}.content must be a string or a list of blocks")
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for j, b in enumerate(content):
            bw = f"{where}.content[{j}]"
            if not isinstance(b, dict):
                raise GatewayError(400, f"{bw} must be a content block object")
            t = b.get("type")
            if t == "text":
                if not isinstance(b.get("text"), str):
                    raise GatewayError(400, f"{bw}.text must be a string")
                parts.append({"type": "text", "text": b["text"]})
            elif t == "image":
                parts.append(_image_part(b, bw))
            elif t == "tool_use" and role == "assistant":
                if not isinstance(b.get("name"), str) or not isinstance(b.get("id"), str):
                    raise GatewayError(400, f"{bw} needs a string id and name")
                calls.append(
                    {
                        "id": b["id"],
                        "type": "function",
                        "function": {
                            "name": b["name"],
                            "arguments": json.dumps(b.get("input") or {}),
                        },
                    }
                )
            elif t == "tool_result" and role == "user":
                if not isinstance(b.get("tool_use_id"), str):
                    raise GatewayError(400, f"{bw}.tool_use_id must be a string")
                results.append(
                    {
                        "role": "tool",
                        "tool_call_id": b["tool_use_id"],
                        "content": _text_of(b.get("content"), f"{bw}.content"),
                    }
                )
            elif t in ("thinking", "redacted_thinking"):
                continue  # earlier reasoning is not replayed to another provider
            else:
                raise GatewayError(400, f"{bw}.type {t!r} is not supported here")
        out.extend(results)
        if calls:
            text = "".join(p["text"] for p in parts if p["type"] == "text")
            out.append({"role": "assistant", "content": text or None, "tool_calls": calls})
        elif parts:
            if all(p["type"] == "text" for p in parts):
                out.append({"role": role, "content": "".join(p["text"] for p in parts)})
            else:
                out.append({"role": role, "content": parts})
    return out


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise GatewayError(400, "tools must be a list of {name, description, input_schema}")
    out = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise GatewayError(400, f"tools[{i}] needs a string name")
        out.append(
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description") or "",
                    "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
                },
            }
        )
    return out or None


def _tool_choice(choice: Any) -> Any:
    if choice is None:
        return None
    if not isinstance(choice, dict):
        raise GatewayError(400, "tool_choice must be an object {type: auto|any|tool|none}")
    t = choice.get("type")
    if t == "auto":
        return "auto"
    if t == "any":
        return "required"
    if t == "none":
        return "none"
    if t == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise GatewayError(400, "tool_choice.type must be auto, any, tool (with a name) or none")


def decode_messages(body: Any) -> tuple[dict[str, Any], bool]:
    """An Anthropic Messages request -> (router keywords, stream?)."""
    if not isinstance(body, dict):
        raise GatewayError(400, "the request body must be a JSON object")
    unknown = set(body) - KNOWN
    if unknown:
        raise GatewayError(
            400, f"unknown request field(s) {[u[:64] for u in sorted(unknown)[:10]]}"
        )
    model = body.get("model")
    if not isinstance(model, str) or not model or len(model) > 256:
        raise GatewayError(400, "model must be a non-empty string")
    max_tokens = positive_int(body.get("max_tokens"), "max_tokens")
    if max_tokens is None:
        raise GatewayError(400, "max_tokens is required (a positive integer)")
    messages = _convert_messages(body.get("messages"))
    system = body.get("system")
    if system is not None:
        text = _text_of(system, "system")
        if text:
            messages.insert(0, {"role": "system", "content": text})
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise GatewayError(400, "stream must be true or false")
    check_numbers(body)
    meta = body.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise GatewayError(400, "metadata must be an object")
    member = (meta or {}).get("user_id")
    if member is not None and (not isinstance(member, str) or not 0 < len(member) <= 256):
        raise GatewayError(400, "metadata.user_id must be a non-empty string")
    kw: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "tools": _tools(body.get("tools")),
        "member_id": member,
    }
    for k in ("temperature", "top_p"):
        if body.get(k) is not None:
            kw[k] = body[k]
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise GatewayError(400, "stop_sequences must be a list of strings")
        if stops:
            kw["stop"] = stops
    tc = _tool_choice(body.get("tool_choice"))
    if tc is not None and kw["tools"]:
        kw["tool_choice"] = tc
    return kw, stream


def usage_block(usage: Usage, cost: Cost) -> dict[str, Any]:
    """Anthropic `usage` (disjoint buckets, as Anthropic counts them) plus the cost layers."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cost": f"{cost.total_usd:f}",
        "cost_details": cost.as_dict(),
    }


def encode_message(
    request_id: str, body: dict[str, Any], model: str, usage: Usage, cost: Cost
) -> dict[str, Any]:
    """The router's chat.completion body -> an Anthropic `message`."""
    choice = (body.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = msg.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        try:
            args = json.loads(fn.get("arguments") or "{}")
        except ValueError:
            args = {"_raw_arguments": fn.get("arguments")}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": fn.get("name", ""),
                "input": args,
            }
        )
    return {
        "id": request_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage_block(usage, cost),
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


_TEXT_DELTA_PRE = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_DELTA_MID = b',"delta":{"type":"text_delta","text":'


class EventEncoder:
    """Anthropic stream events for one stream: opens and closes content blocks as text
    and tool-call pieces arrive."""

    def __init__(self, request_id: str, model: str) -> None:
        self.request_id = request_id
        self.model = model
        self.block = -1  # index of the open block, -1 = none
        self.block_kind = ""
        self.tool_blocks: dict[int, int] = {}  # tool call index -> block index
        self.stop_reason = "end_turn"

    def start(self) -> bytes:
        return _event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": self.request_id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            },
        )

    def _close(self) -> bytes:
        if not self.block_kind:
            return b""
        out = _event("content_block_stop", {"type": "content_block_stop", "index": self.block})
        self.block_kind = ""
        return out

    def text(self, text: str) -> bytes:
        out = b""
        if self.block_kind != "text":
            out += self._close()
            self.block += 1
            self.block_kind = "text"
            out += _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": self.block,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        # the bytes _event gives for this delta, without building and dumping a dict for
        # every streamed piece of text
        return out + b"%s%d%s%s}}\n\n" % (
            _TEXT_DELTA_PRE,
            self.block,
            _TEXT_DELTA_MID,
            _quote(text).encode(),
        )

    def tool_call(self, index: int, call_id: str | None, name: str | None, args: str) -> bytes:
        out = b""
        block = self.tool_blocks.get(index)
        if block is None or self.block_kind != f"tool{index}":
            out += self._close()
            self.block += 1
            self.block_kind = f"tool{index}"
            self.tool_blocks[index] = self.block
            out += _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": self.block,
                    "content_block": {
                        "type": "tool_use",
                        "id": call_id or f"toolu_{self.request_id}_{index}",
                        "name": name or "",
                        "input": {},
                    },
                },
            )
        if args:
            out += _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": self.block,
                    "delta": {"type": "input_json_delta", "partial_json": args},
                },
            )
        return out

    def finish(self, reason: str) -> None:
        self.stop_reason = _STOP.get(reason, "end_turn")

    def end(self, usage: Usage, cost: Cost) -> bytes:
        out = self._close()
        out += _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                "usage": usage_block(usage, cost),
            },
        )
        return out + _event("message_stop", {"type": "message_stop"})

    def error(self, code: int, message: str) -> bytes:
        etype = "overloaded_error" if code == 503 else "api_error"
        return _event(
            "error",
            {"type": "error", "error": {"type": etype, "message": message, "code": code}},
        )
