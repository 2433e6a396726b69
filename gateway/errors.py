"""Caller-facing errors of the gateway in both wire formats: the OpenAI envelope
`{"error": {"code", "message", "type", "metadata"}}` and Anthropic's
`{"type": "error", "error": {"type", "message"}}` (which also carries `code` and
`metadata`), with the routing core's HTTP codes (400/401/402/403/404/429/502/503) plus the
gateway's own 413 (body too large) and 429 (too many concurrent requests on one key).

Messages come from the router's `RouteError`s or from the gateway's own checks: they name
the field or header at fault and never contain a secret or a traceback.
"""

from __future__ import annotations

import json
from typing import Any

# OpenAI-style `type` per HTTP status (what SDKs and client code switch on).
OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    499: "client_closed",
    500: "api_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}
# Anthropic's error `type` names (https://docs.anthropic.com/en/api/errors).
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}


class GatewayError(Exception):
    """A request the gateway refuses before (or instead of) routing it."""

    def __init__(self, code: int, message: str, metadata: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.metadata = metadata or {}


def http_status(code: int) -> int:
    """The HTTP status for an error code (the router's 499 is never sent: nobody listens)."""
    return code if 400 <= code <= 599 else 500


def openai_error(code: int, message: str, metadata: dict[str, Any] | None = None) -> bytes:
    body = {
        "error": {
            "code": code,
            "message": message,
            "type": OPENAI_TYPES.get(code, "api_error"),
            "metadata": metadata or {},
        }
    }
    return json.dumps(body, separators=(",", ":")).encode()


def anthropic_error(code: int, message: str, metadata: dict[str, Any] | None = None) -> bytes:
    body = {
        "type": "error",
        "error": {
            "type": ANTHROPIC_TYPES.get(code, "api_error"),
            "message": message,
            "code": code,
            "metadata": metadata or {},
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()
