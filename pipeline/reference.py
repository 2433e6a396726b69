"""The config (`ledger.yaml`) as small TEMP tables on a DuckDB connection, so SQL can join
request logs and invoice lines against BYOK keys, API keys, workloads and guardrails.
TEMP tables live only on the connection that made them: nothing of the config (and never a
secret) is persisted by this module."""

from __future__ import annotations

import hashlib

import duckdb

from routing_core.config import LedgerConfig
from routing_core.schema import ACCOUNT_IDS

_TABLES = {
    "ref_providers": "provider VARCHAR, statement_name VARCHAR, invoice_format VARCHAR, "
    "data_collection VARCHAR",
    "ref_endpoints": "model VARCHAR, provider VARCHAR, upstream_model VARCHAR, zdr BOOLEAN",
    "ref_byok_keys": "key_id VARCHAR, provider VARCHAR, tier VARCHAR, shared_fallback VARCHAR, "
    "filter_models VARCHAR[], filter_api_keys VARCHAR[], filter_members VARCHAR[], "
    "filter_environments VARCHAR[], zdr BOOLEAN, disabled BOOLEAN, "
    + ", ".join(f"{a} VARCHAR" for a in ACCOUNT_IDS),
    "ref_api_keys": "api_key_id VARCHAR, environment VARCHAR, app VARCHAR, owner VARCHAR, "
    "guardrail VARCHAR, default_workload VARCHAR",
    "ref_members": "member_id VARCHAR, guardrail VARCHAR",
    "ref_guardrails": "guardrail VARCHAR, enforce_zdr BOOLEAN, allowed_models VARCHAR[], "
    "allowed_providers VARCHAR[], ignored_models VARCHAR[], ignored_providers VARCHAR[]",
    "ref_workloads": "workload VARCHAR, byok VARCHAR, shared_fallback BOOLEAN, zdr VARCHAR, "
    "allowed_models VARCHAR[], allowed_providers VARCHAR[]",
}


def _rows(cfg: LedgerConfig) -> dict[str, list[tuple]]:
    return {
        "ref_providers": [
            (p.id, p.statement_name, p.invoice_format, p.data_collection) for p in cfg.providers
        ],
        "ref_endpoints": [
            (m.id, e.provider, e.upstream_model, e.zdr) for m in cfg.models for e in m.endpoints
        ],
        "ref_byok_keys": [
            (
                k.id,
                k.provider,
                k.tier,
                k.shared_fallback,
                k.filters.models,
                k.filters.api_keys,
                k.filters.members,
                k.filters.environments,
                k.zdr,
                k.disabled,
                *(k.account.get(a) for a in ACCOUNT_IDS),
            )
            for k in cfg.byok_keys
        ],
        "ref_api_keys": [
            (a.id, a.environment, a.app, a.owner, a.guardrail, a.default_workload)
            for a in cfg.api_keys
        ],
        "ref_members": [(m.id, m.guardrail) for m in cfg.members],
        "ref_guardrails": [
            (
                g.id,
                g.enforce_zdr,
                g.allowed_models,
                g.allowed_providers,
                g.ignored_models,
                g.ignored_providers,
            )
            for g in cfg.guardrails
        ],
        "ref_workloads": [
            (w.id, w.byok, w.shared_fallback, w.zdr, w.allowed_models, w.allowed_providers)
            for w in cfg.workloads
        ],
    }


def create_reference_tables(conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig) -> None:
    """(Re)create the `ref_*` TEMP tables from the config on this connection. A run's steps
    share one connection (pipeline/defs/resources.py): when the tables already hold this
    config's rows (a fingerprint beside them says so), they are kept as they are."""
    tables = _rows(cfg)
    fingerprint = hashlib.sha256(repr(sorted(tables.items())).encode()).hexdigest()
    # Looked up in the catalog, not by selecting from a missing table: an error would abort
    # the caller's open transaction.
    exists = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'ref_fingerprint'"
    ).fetchone()[0]
    if exists and conn.execute("SELECT fp FROM ref_fingerprint").fetchone() == (fingerprint,):
        return
    for name, rows in tables.items():
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({_TABLES[name]})")
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
    conn.execute("CREATE OR REPLACE TEMP TABLE ref_fingerprint (fp VARCHAR)")
    conn.execute("INSERT INTO ref_fingerprint VALUES (?)", [fingerprint])
