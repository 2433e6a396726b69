"""Shared builders for the tests that read the marts (alerts, reports): the mart tables exactly
as the pipeline creates them, a small `ledger.yaml` written to disk and loaded, and the budget
and alert settings several alert tests share. pyproject.toml puts tests/ on pytest's
pythonpath, so test modules `from martkit import ...`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import yaml

from pipeline.loads import ensure_tables
from routing_core.config import LedgerConfig, load_config

# Anomaly detection that never fires, for tests about budgets and delivery.
NO_ANOMALIES = {"min_impact_usd": "1000000", "baseline_days": 28, "sensitivity": 4.0}
CHAT_MONTHLY_BUDGET = {
    "id": "chat-monthly",
    "scope": "api_key",
    "match": "chat-prod",
    "usd": "100",
    "period": "monthly",
    "thresholds_pct": [50, 100],
}

PROVIDERS = {
    # id: (api, base_url, invoice_format, model id, upstream model, $/M input, $/M output)
    "openai": (
        "openai",
        "http://127.0.0.1:1/v1",
        "openai_costs",
        "openai/gpt-4.1",
        "gpt-4.1",
        "2",
        "8",
    ),
    "anthropic": (
        "anthropic",
        "http://127.0.0.1:1",
        "anthropic_cost_report",
        "anthropic/claude-opus-4.1",
        "claude-opus-4-1",
        "15",
        "75",
    ),
}


def create_marts(conn: duckdb.DuckDBPyConnection, only: Sequence[str] | None = None) -> None:
    """The mart tables from the pipeline's own DDL (so a fixture can never drift from the real
    columns); with `only`, just those marts (e.g. to test what a missing mart does)."""
    ensure_tables(conn)
    if only is not None:
        names = conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'"
        ).fetchall()
        for (name,) in names:
            if name not in only:
                conn.execute(f"DROP TABLE marts.{name}")


def ledger_data(
    providers: list[str], byok_keys: dict[str, str], api_keys: dict[str, tuple]
) -> dict[str, Any]:
    """A minimal config: `providers` (ids of PROVIDERS, one model each), `byok_keys` (id ->
    provider), `api_keys` (id -> (environment, app[, owner])); paths relative to the file."""
    keys = []
    for key_id, (env, app, *owner) in api_keys.items():
        entry = {
            "id": key_id,
            "secret_sha256": hashlib.sha256(key_id.encode()).hexdigest(),
            "environment": env,
            "app": app,
        }
        if owner and owner[0]:
            entry["owner"] = owner[0]
        keys.append(entry)
    return {
        "paths": {
            "duckdb": "ledger.duckdb",
            "reports": "reports",
            "logs": "logs",
            "invoices": "inv",
        },
        "providers": [
            {
                "id": p,
                "api": PROVIDERS[p][0],
                "base_url": PROVIDERS[p][1],
                "invoice_format": PROVIDERS[p][2],
            }
            for p in providers
        ],
        "models": [
            {
                "id": PROVIDERS[p][3],
                "endpoints": [
                    {
                        "provider": p,
                        "upstream_model": PROVIDERS[p][4],
                        "price": {"input": PROVIDERS[p][5], "output": PROVIDERS[p][6]},
                    }
                ],
            }
            for p in providers
        ],
        "byok_keys": [
            {"id": k, "provider": p, "secret_env": f"{p.upper()}_KEY"} for k, p in byok_keys.items()
        ],
        "api_keys": keys,
    }


def write_config(tmp: Path, data: dict[str, Any]) -> LedgerConfig:
    """Write `data` to tmp/ledger.yaml (so CLI tests can load the very same file) and load it."""
    path = tmp / "ledger.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path)
