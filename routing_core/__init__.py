"""byok-ledger's routing core: BYOK-first routing with OpenRouter-style semantics."""

from routing_core.config import ConfigError, LedgerConfig, load_config
from routing_core.routes import Plan, RouteError, RouteRequest

__all__ = [
    "Completion",
    "ConfigError",
    "LedgerConfig",
    "Plan",
    "RouteError",
    "RouteRequest",
    "Router",
    "load_config",
]


def __getattr__(name: str):
    # The router pulls in httpx and the planner: import it only when asked for, so
    # `load_config` stays cheap for the CLI and the pipeline.
    if name in ("Router", "Completion"):
        from routing_core import router

        return getattr(router, name)
    raise AttributeError(f"module 'routing_core' has no attribute {name!r}")
