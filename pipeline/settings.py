"""Where the pipeline finds its `ledger.yaml` (env `BYOK_LEDGER_CONFIG`, default the Acme example)
and a cached, validated load of it. Dagster definitions are static, so the config is looked up
by path at run time, not at import time."""

from __future__ import annotations

import os
from pathlib import Path

from routing_core.config import LedgerConfig, load_config

CONFIG_ENV = "BYOK_LEDGER_CONFIG"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "examples" / "acme" / "ledger.yaml"

_cache: dict[tuple[str, float], LedgerConfig] = {}


def config_path() -> Path:
    """The config file the pipeline uses: `$BYOK_LEDGER_CONFIG` or the Acme example."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        return DEFAULT_CONFIG
    p = Path(raw)
    if not p.is_absolute() and not p.exists() and (REPO_ROOT / p).exists():
        p = REPO_ROOT / p
    return p.resolve()


def get_config(path: str | Path | None = None) -> LedgerConfig:
    """Load (and cache by path and modification time) the ledger config."""
    p = Path(path).resolve() if path else config_path()
    key = (str(p), p.stat().st_mtime if p.exists() else 0.0)
    if key not in _cache:
        _cache[key] = load_config(p)
    return _cache[key]
