"""OpenAI-compatible chat completions (`POST {base_url}/chat/completions`, Bearer key).

The internal request form already is this wire format, so the request passes through with
the upstream model name set. Usage: OpenAI counts cached prompt tokens inside
`prompt_tokens` (`prompt_tokens_details.cached_tokens`) and reasoning inside
`completion_tokens` (`completion_tokens_details.reasoning_tokens`); the disjoint buckets
subtract the cached part from input and keep reasoning as an informational subset.
"""

from __future__ import annotations

import json
from typing import Any

from routing_core.providers.base import (
    AUTH,
    BAD_REQUEST,
    CONTEXT_LENGTH,
    Adapter,
    ProviderResult,
    StreamParser,
    stream_error,
)
from routing_core.schema import Usage
from routing_core.streaming import Finish, TextDelta, ToolCallDelta
from routing_core.usage import INVALID, STATE_INVALID, STATE_MISSING, STATE_OK, read_count

# OpenAI codes that mean "the prompt does not fit this model" (a smaller prompt or a
# longer-context model would work): the router moves to the next model.
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})


def parse_openai_usage(u: Any) -> tuple[Usage, str]:
    """OpenAI `usage` -> disjoint buckets (cached tokens are not counted twice) and the
    usage state (routing_core.usage: ok | missing | invalid). An invalid count is
    `INVALID` in the result, for the router to bound."""
    if not isinstance(u, dict) or not u:
        return Usage(), STATE_MISSING
    pd = u.get("prompt_tokens_details")
    cd = u.get("completion_tokens_details")
    prompt = read_count(u.get("prompt_tokens"))
    completion = read_count(u.get("completion_tokens"))
    cached = read_count(pd.get("cached_tokens")) if isinstance(pd, dict) else 0
    reasoning = read_count(cd.get("reasoning_tokens")) if isinstance(cd, dict) else 0
    if "prompt_tokens" not in u and "completion_tokens" not in u:
        return Usage(), STATE_MISSING
    state = STATE_OK
    if prompt is None or cached is None:
        prompt, cached, state = INVALID, 0, STATE_INVALID
    else:
        cached = min(cached, prompt)
        prompt -= cached
    if completion is None:
        completion, state = INVALID, STATE_INVALID
    if reasoning is None:
        reasoning, state = 0, STATE_INVALID
    return (
        Usage(
            input_tokens=prompt,
            cache_read_tokens=cached,
            cache_write_tokens=0,
            output_tokens=completion,
            reasoning_tokens=min(reasoning, max(completion, 0)),
        ),
        state,
    )


def openai_usage(u: dict[str, Any] | None) -> Usage:
    """OpenAI `usage` -> disjoint buckets; an invalid count reads 0 (unbounded view)."""
    usage, _ = parse_openai_usage(u)
    return Usage(*(max(0, v) for v in usage.as_dict().values()))


def usage_to_openai(u: Usage) -> dict[str, Any]:
    """Disjoint buckets -> the OpenAI `usage` object callers read."""
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


class OpenAIAdapter(Adapter):
    api = "openai"

    def prepare(
        self, request: dict[str, Any], upstream_model: str, secret: str, base_url: str
    ) -> tuple[str, dict[str, str], dict[str, Any]]:
        body = dict(request)
        body["model"] = upstream_model
        headers = {"authorization": "Bearer " + secret}
        return base_url + "/chat/completions", headers, body

    def prepare_stream(
        self, request: dict[str, Any], upstream_model: str, secret: str, base_url: str
    ) -> tuple[str, dict[str, str], dict[str, Any]]:
        url, headers, body = self.prepare(request, upstream_model, secret, base_url)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # usage in the final chunk
        return url, headers, body

    def stream_parser(self) -> StreamParser:
        return OpenAIStreamParser()

    def parse_ok(self, data: dict[str, Any], gateway_model: str) -> ProviderResult:
        choices = data["choices"]
        if not isinstance(choices, list):
            raise TypeError("choices is not a list")
        usage, state = parse_openai_usage(data.get("usage"))
        body = {
            "id": data.get("id", ""),
            "object": "chat.completion",
            "created": data.get("created", 0),
            "model": gateway_model,
            "choices": choices,
            "usage": usage_to_openai(usage),
        }
        return ProviderResult(body=body, usage=usage, usage_state=state)

    def refine_error(
        self, kind: str, status: int, err: dict[str, Any], message: str
    ) -> tuple[str, str]:
        code = err.get("code")
        if kind == BAD_REQUEST and (code in _CONTEXT_CODES or "maximum context length" in message):
            kind = CONTEXT_LENGTH
        elif code == "insufficient_quota" and status == 429:
            # Out of credit is not a transient rate limit; waiting won't help this key.
            kind = AUTH
        return kind, str(code or err.get("type") or f"http_{status}")


class OpenAIStreamParser(StreamParser):
    """chat.completion.chunk events -> neutral events. Usage comes in the last chunk (empty
    `choices`), which `stream_options.include_usage` asks for; `data: [DONE]` ends it."""

    def __init__(self) -> None:
        self.done = False
        self.finished = False
        self.out_chars = 0
        self._usage: Any = None

    def feed(self, event: str | None, data: str) -> list[Any]:
        if data == "[DONE]":
            self.done = True
            return []
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise stream_error("a stream chunk is not a JSON object")
        err = obj.get("error")
        if err is not None:
            e = err if isinstance(err, dict) else {}
            raise stream_error(
                f"provider error mid-stream: {e.get('message') or err}",
                str(e.get("code") or e.get("type") or "stream_error"),
            )
        u = obj.get("usage")
        if isinstance(u, dict) and u:
            self._usage = u
        out: list[Any] = []
        choices = obj.get("choices")
        if choices is None:
            choices = []
        if not isinstance(choices, list):
            raise stream_error("a stream chunk's choices is not a list")
        for ch in choices:
            if not isinstance(ch, dict) or ch.get("index", 0) != 0:
                continue  # n > 1 is not routed; only the first choice streams
            delta = ch.get("delta")
            if isinstance(delta, dict):
                text = delta.get("content")
                if isinstance(text, str) and text:
                    self.out_chars += len(text)
                    out.append(TextDelta(text))
                for call in delta.get("tool_calls") or ():
                    if not isinstance(call, dict):
                        continue
                    fn = call.get("function") if isinstance(call.get("function"), dict) else {}
                    args = fn.get("arguments")
                    args = args if isinstance(args, str) else ""
                    name = fn.get("name") if isinstance(fn.get("name"), str) else None
                    self.out_chars += len(args) + len(name or "")
                    idx = call.get("index", 0)
                    out.append(
                        ToolCallDelta(
                            idx if isinstance(idx, int) and not isinstance(idx, bool) else 0,
                            call.get("id") if isinstance(call.get("id"), str) else None,
                            name,
                            args,
                        )
                    )
            reason = ch.get("finish_reason")
            if isinstance(reason, str) and reason:
                self.finished = True
                out.append(Finish(reason))
        return out

    def usage(self) -> tuple[Usage, str]:
        return parse_openai_usage(self._usage)
