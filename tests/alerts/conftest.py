"""Fixtures for the alert tests: a temporary DuckDB with `marts.split_billing_daily` shaped as
SPEC §8 says (plus `key_id`), rows written by the tests, and a small config pointing at it."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from routing_core.config import LedgerConfig, load_config

SPLIT_DDL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE TABLE marts.split_billing_daily (
    day DATE, environment VARCHAR, app VARCHAR, api_key_id VARCHAR, workload VARCHAR,
    member_id VARCHAR, provider VARCHAR, model VARCHAR, credential VARCHAR, requests BIGINT,
    provider_billed_usd DECIMAL(38,9), provider_estimated_usd DECIMAL(38,9),
    platform_fee_usd DECIMAL(38,9), platform_credits_usd DECIMAL(38,9),
    total_usd DECIMAL(38,9), status VARCHAR, key_id VARCHAR
);
"""

API_KEYS = {
    # id: (environment, app, owner)
    "chat-prod": ("prod", "web-chat", None),
    "batch-prod": ("prod", "batch", None),
    "sandbox-dev": ("dev", "sandbox", "dan"),
}


def make_config(tmp: Path, **overrides: Any) -> LedgerConfig:
    data: dict[str, Any] = {
        "paths": {
            "duckdb": "ledger.duckdb",
            "reports": "reports",
            "logs": "logs",
            "invoices": "inv",
        },
        "providers": [
            {
                "id": "openai",
                "api": "openai",
                "base_url": "http://127.0.0.1:1/v1",
                "invoice_format": "openai_costs",
            },
            {
                "id": "anthropic",
                "api": "anthropic",
                "base_url": "http://127.0.0.1:1",
                "invoice_format": "anthropic_cost_report",
            },
        ],
        "models": [
            {
                "id": "openai/gpt-4.1",
                "endpoints": [
                    {
                        "provider": "openai",
                        "upstream_model": "gpt-4.1",
                        "price": {"input": "2", "output": "8"},
                    }
                ],
            },
            {
                "id": "anthropic/claude-opus-4.1",
                "endpoints": [
                    {
                        "provider": "anthropic",
                        "upstream_model": "claude-opus-4-1",
                        "price": {"input": "15", "output": "75"},
                    }
                ],
            },
        ],
        "byok_keys": [
            {"id": "oai-prod", "provider": "openai", "secret_env": "OAI_KEY"},
            {"id": "ant-prod", "provider": "anthropic", "secret_env": "ANT_KEY"},
        ],
        "api_keys": [
            {
                "id": k,
                "secret_sha256": hashlib.sha256(k.encode()).hexdigest(),
                "environment": env,
                "app": app,
                **({"owner": owner} if owner else {}),
            }
            for k, (env, app, owner) in API_KEYS.items()
        ],
        "members": [{"id": "dan"}],
        "workloads": [{"id": "chat"}, {"id": "batch"}, {"id": "sandbox"}],
        "budgets": [],
        "alerts": {
            "webhook_url": None,
            "min_impact_usd": "20",
            "baseline_days": 28,
            "sensitivity": 4.0,
        },
    }
    data.update(overrides)
    # Written to disk so the CLI tests can load the very same file.
    path = tmp / "ledger.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path)


class Marts:
    """A real DuckDB file with the split-billing mart; `add` writes one row."""

    def __init__(self, path: Path):
        self.path = path
        with duckdb.connect(str(path)) as c:
            c.execute(SPLIT_DDL)

    def add(
        self,
        day: dt.date,
        total: str | Decimal,
        *,
        api_key: str | None = "chat-prod",
        workload: str | None = "chat",
        model: str = "openai/gpt-4.1",
        provider: str = "openai",
        key_id: str | None = "oai-prod",
        member: str | None = None,
        requests: int = 10,
    ) -> None:
        env, app, _ = API_KEYS.get(api_key or "", (None, None, None))
        total = Decimal(total)
        credential = "byok" if key_id else "shared"
        fee = (total * Decimal("0.05")).quantize(Decimal("0.000000001")) if key_id else Decimal(0)
        credits = Decimal(0) if key_id else total
        prov = total - fee - credits
        with duckdb.connect(str(self.path)) as c:
            c.execute(
                "INSERT INTO marts.split_billing_daily VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    day,
                    env,
                    app,
                    api_key,
                    workload,
                    member,
                    provider,
                    model,
                    credential,
                    requests,
                    prov,
                    prov,
                    fee,
                    credits,
                    total,
                    "invoiced",
                    key_id,
                ],
            )

    def query(self, q: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.path), read_only=True) as c:
            return c.execute(q, params or []).fetchall()


@pytest.fixture
def marts(tmp_path: Path) -> Marts:
    return Marts(tmp_path / "ledger.duckdb")


class Receiver:
    """A real webhook receiver on 127.0.0.1. `fail_next` makes the next N POSTs answer 500."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        self.send_response(500)
                        self.end_headers()
                        self.wfile.write(b"receiver down")
                        return
                    receiver.received.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ledger"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def make_cfg(tmp_path: Path):
    """make_cfg(**top_level_overrides) -> LedgerConfig written to tmp_path/ledger.yaml."""
    return lambda **kw: make_config(tmp_path, **kw)
