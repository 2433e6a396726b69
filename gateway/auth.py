"""Who is calling: the router API key presented as `Authorization: Bearer <key>` (or
`x-api-key` on the Anthropic wire) matched by SHA-256 against `api_keys[].secret_sha256`.

Matching compares the presented key's digest with every configured digest using
`hmac.compare_digest` and never stops early, so the time taken does not depend on which
key (if any) matched or how much of a digest agreed. The presented key is never stored,
logged or echoed; only the matched key id travels on.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from routing_core.config import ApiKey

MAX_KEY_CHARS = 512  # longer "keys" are refused without hashing them


class KeyTable:
    """The configured router API keys, by digest."""

    def __init__(self, api_keys: Iterable[ApiKey]) -> None:
        self._digests = [(bytes.fromhex(a.secret_sha256), a.id) for a in api_keys]

    def lookup(self, presented: str | None) -> str | None:
        """The API key id whose SHA-256 matches `presented`, or None."""
        if not presented or len(presented) > MAX_KEY_CHARS:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: str | None = None
        for known, key_id in self._digests:
            if hmac.compare_digest(digest, known) and found is None:
                found = key_id
        return found


def presented_key(headers: Mapping[str, str], *, allow_x_api_key: bool) -> str | None:
    """The key from `Authorization: Bearer ...` (or `x-api-key` when allowed)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if allow_x_api_key:
        value = headers.get("x-api-key")
        if value and value.strip():
            return value.strip()
    return None
