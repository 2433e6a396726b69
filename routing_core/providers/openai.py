"""OpenAI-compatible chat completions (`POST {base_url}/chat/completions`, Bearer key).

The internal request form already is this wire format, so the request passes through with
the upstream model name set. Usage: OpenAI counts cached prompt tokens inside
`prompt_tokens` (`prompt_tokens_details.cached_tokens`) and reasoning inside
`completion_tokens` (`completion_tokens_details.reasoning_tokens`); the disjoint buckets
subtract the cached part from input and keep reasoning as an informational subset.
"""

from __future__ import annotations

from typing import Any

import httpx

from routing_core.providers.base import (
    AUTH,
    BAD_REQUEST,
    CONTEXT_LENGTH,
    RATE_LIMITED,
    Adapter,
    ProviderError,
    ProviderResult,
    parse_retry_after,
    status_kind,
)
from routing_core.schema import Usage

# OpenAI codes that mean "the prompt does not fit this model" (a smaller prompt or a
# longer-context model would work): the router moves to the next model.
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})


def _int(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and v > 0 else 0


def openai_usage(u: dict[str, Any] | None) -> Usage:
    """OpenAI `usage` -> disjoint buckets (cached tokens are not counted twice)."""
    if not u:
        return Usage()
    prompt = _int(u.get("prompt_tokens"))
    completion = _int(u.get("completion_tokens"))
    cached = _int((u.get("prompt_tokens_details") or {}).get("cached_tokens"))
    reasoning = _int((u.get("completion_tokens_details") or {}).get("reasoning_tokens"))
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

    def classify(self, status: int, data: Any, headers: httpx.Headers) -> ProviderError:
        err = data.get("error") if isinstance(data, dict) else None
        if not isinstance(err, dict):
            err = {}
        code = err.get("code")
        etype = err.get("type")
        message = str(err.get("message") or f"HTTP {status} from provider")
        error_type = str(code or etype or f"http_{status}")
        kind = status_kind(status)
        if kind == BAD_REQUEST and (code in _CONTEXT_CODES or "maximum context length" in message):
            kind = CONTEXT_LENGTH
        elif code == "insufficient_quota" and status == 429:
            # Out of credit is not a transient rate limit; waiting won't help this key.
            kind = AUTH
        retry = parse_retry_after(headers.get("retry-after")) if kind == RATE_LIMITED else None
        return ProviderError(
            kind, message, http_status=status, error_type=error_type, retry_after_s=retry
        )
