"""Provider wire protocols: one adapter per `providers[].api` value."""

from routing_core.providers.anthropic import AnthropicAdapter
from routing_core.providers.base import (
    AUTH,
    BAD_REQUEST,
    CONNECT,
    CONTEXT_LENGTH,
    RATE_LIMITED,
    SERVER,
    TIMEOUT,
    UNAVAILABLE_KINDS,
    Adapter,
    ProviderError,
    ProviderResult,
    parse_retry_after,
)
from routing_core.providers.openai import OpenAIAdapter

ADAPTERS: dict[str, Adapter] = {"openai": OpenAIAdapter(), "anthropic": AnthropicAdapter()}


def shared_secret_env(provider_id: str) -> str:
    """The environment variable (or `secrets` mapping key) holding the platform's pooled
    key for a provider's shared capacity, e.g. `BYOK_LEDGER_SHARED_OPENAI_KEY`."""
    name = "".join(c if c.isalnum() else "_" for c in provider_id.upper())
    return f"BYOK_LEDGER_SHARED_{name}_KEY"


def adapter_for(api: str) -> Adapter:
    """The adapter of a wire protocol (`openai` | `anthropic`)."""
    try:
        return ADAPTERS[api]
    except KeyError:
        raise ValueError(
            f"no adapter for provider api {api!r}; known: {sorted(ADAPTERS)}"
        ) from None


__all__ = [
    "ADAPTERS",
    "AUTH",
    "BAD_REQUEST",
    "CONNECT",
    "CONTEXT_LENGTH",
    "RATE_LIMITED",
    "SERVER",
    "TIMEOUT",
    "UNAVAILABLE_KINDS",
    "Adapter",
    "AnthropicAdapter",
    "OpenAIAdapter",
    "ProviderError",
    "ProviderResult",
    "adapter_for",
    "parse_retry_after",
    "shared_secret_env",
]
