"""byok-ledger's routing core: BYOK-first routing with OpenRouter-style semantics."""

from routing_core.config import ConfigError, LedgerConfig, load_config

__all__ = ["ConfigError", "LedgerConfig", "load_config"]
