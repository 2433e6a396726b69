"""OpenAI-compatible chat completions (`POST {base_url}/chat/completions`, Bearer key).

The internal request form already is this wire format, so the request passes through with
the upstream model name set. Usage: OpenAI counts cached prompt tokens inside
`prompt_tokens` (`prompt_tokens_details.cached_tokens`) and reasoning inside
`completion_tokens` (`completion_tokens_details.reasoning_tokens`); the disjoint buckets
subtract the cached part from input and keep reasoning as an informational subset.
"""

from __future__ import annotations

from typing import Any

from routing_core.providers.base import (
    AUTH,
    BAD_REQUEST,
    CONTEXT_LENGTH,
    Adapter,
    ProviderResult,
    token_count,
)
from routing_core.schema import Usage

# OpenAI codes that mean "the prompt does not fit this model" (a smaller prompt or a
# longer-context model would work): the router moves to the next model.
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})


def openai_usage(u: dict[str, Any] | None) -> Usage:
    """OpenAI `usage` -> disjoint buckets (cached tokens are not counted twice)."""
    if not u:
        return Usage()
    prompt = token_count(u.get("prompt_tokens"))
    completion = token_count(u.get("completion_tokens"))
    cached = token_count((u.get("prompt_tokens_details") or {}).get("cached_tokens"))
    reasoning = token_count((u.get("completion_tokens_details") or {}).get("reasoning_tokens"))
    cached = min(cached, prompt)
    return Usage(
        input_tokens=prompt - cached,
        cache_read_tokens=cached,
        cache_write_tokens=0,
        output_tokens=completion,
        reasoning_tokens=min(reasoning, completion),
    )


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

    def parse_ok(self, data: dict[str, Any], gateway_model: str) -> ProviderResult:
        choices = data["choices"]
        if not isinstance(choices, list):
            raise TypeError("choices is not a list")
        usage = openai_usage(data.get("usage"))
        body = {
            "id": data.get("id", ""),
            "object": "chat.completion",
            "created": data.get("created", 0),
            "model": gateway_model,
            "choices": choices,
            "usage": usage_to_openai(usage),
        }
        return ProviderResult(body=body, usage=usage)

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
