"""Fixtures for the alert tests: a temporary DuckDB with the pipeline's marts (tests/martkit.py),
split-billing rows written by the tests, a small config pointing at it, a webhook receiver."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from martkit import create_marts, ledger_data, write_config

from routing_core.config import LedgerConfig

API_KEYS = {
    # id: (environment, app, owner)
    "chat-prod": ("prod", "web-chat", None),
    "batch-prod": ("prod", "batch", None),
    "sandbox-dev": ("dev", "sandbox", "dan"),
}


def make_config(tmp: Path, **overrides: Any) -> LedgerConfig:
    data = ledger_data(
        ["openai", "anthropic"], {"oai-prod": "openai", "ant-prod": "anthropic"}, API_KEYS
    )
    data.update(
        {
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
    )
    data.update(overrides)
    return write_config(tmp, data)


class Marts:
    """A real DuckDB file with the split-billing mart (only); `add` writes one row."""

    def __init__(self, path: Path):
        self.path = path
        with duckdb.connect(str(path)) as c:
            create_marts(c, only=["split_billing_daily"])

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
            # The SPEC columns plus key_id; the extra NOT NULL columns get neutral values.
            c.execute(
                "INSERT INTO marts.split_billing_daily (day, environment, app, api_key_id, "
                "workload, member_id, provider, model, credential, requests, "
                "provider_billed_usd, provider_estimated_usd, platform_fee_usd, "
                "platform_credits_usd, total_usd, status, key_id, platform_fee_estimated_usd, "
                "platform_credits_estimated_usd, list_usd, attribution) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'logged')",
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
                    fee,
                    credits,
                    total,
                ],
            )

    def query(self, q: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.path), read_only=True) as c:
            return c.execute(q, params or []).fetchall()


@pytest.fixture
def marts(tmp_path: Path) -> Marts:
    return Marts(tmp_path / "ledger.duckdb")


class Receiver:
    """A real webhook receiver on 127.0.0.1. `fail_next` makes the next N POSTs answer
    `fail_status` (500 unless set)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.fail_next = 0
        self.fail_status = 500
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        self.send_response(receiver.fail_status)
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
