"""Test kit for the pipeline tests: a copy of the Acme config in a temp folder, a log writer
that follows `routing_core.schema` exactly (every record is validated by its pydantic model),
and the hand-written invoice fixtures under tests/fixtures/invoices/."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from routing_core.schema import OutcomeEvent, RequestRecord, format_ts

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
ACME = REPO / "examples" / "acme" / "ledger.yaml"

KEY_ACCOUNTS = {
    "oai-prod-primary": {"project_id": "proj_acme_prod", "api_key_id": "key_prod_primary"},
    "oai-prod-backup": {"project_id": "proj_acme_prod", "api_key_id": "key_prod_backup"},
    "oai-nonprod": {"project_id": "proj_acme_nonprod", "api_key_id": "key_nonprod"},
    "ant-prod-primary": {"workspace_id": "wrkspc_acme_prod"},
    "ant-nonprod": {"workspace_id": "default"},
    "bedrock-prod": {"sub_account_id": "412938475610"},
    "vertex-coding": {"sub_account_id": "acme-code-prod"},
}
API_KEYS = {
    "public-chat-prod": ("prod", "web-chat", "public-chat"),
    "public-chat-staging": ("staging", "web-chat", "public-chat"),
    "assistant-prod": ("prod", "internal-assistant", "internal-assistant"),
    "legal-prod": ("prod", "legal-review", "legal-review"),
    "batch-prod": ("prod", "batch-enrichment", "batch"),
}


# Where a request ran, as request() keyword arguments (Acme's names).
SONNET_ON_ANTHROPIC = {
    "model": "anthropic/claude-sonnet-4",
    "provider": "anthropic",
    "upstream_model": "claude-sonnet-4-20250514",
}
STAGING_MINI = {  # staging web chat on gpt-4.1-mini with the non-prod OpenAI key
    "api_key_id": "public-chat-staging",
    "model": "openai/gpt-4.1-mini",
    "upstream_model": "gpt-4.1-mini-2025-04-14",
    "key_id": "oai-nonprod",
}


def request(
    request_id: str,
    ts: str,
    api_key_id: str = "public-chat-prod",
    model: str | None = "openai/gpt-4.1",
    provider: str | None = "openai",
    upstream_model: str | None = "gpt-4.1-2025-04-14",
    credential: str | None = "byok",
    key_id: str | None = "oai-prod-primary",
    provider_usd: str = "0",
    fee: str = "0",
    credits: str = "0",
    status: str = "ok",
    workflow_id: str | None = None,
    zdr: bool | None = False,
    attempts: list[dict[str, Any]] | None = None,
    fallback_used: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """One request record, validated against the SPEC §6 contract."""
    env, app, workload = API_KEYS[api_key_id]
    if attempts is None:
        attempts = (
            [
                {
                    "model": model,
                    "provider": provider,
                    "credential": credential,
                    "key_id": key_id,
                    "status": "ok" if status == "ok" else "error",
                    "http_status": 200 if status == "ok" else 502,
                    "error_type": None,
                    "latency_ms": 120.0,
                }
            ]
            if provider
            else []
        )
    rec: dict[str, Any] = {
        "schema_version": 1,
        "request_id": request_id,
        "ts": ts,
        "duration_ms": 150.0,
        "api_key_id": api_key_id,
        "environment": env,
        "app": app,
        "member_id": None,
        "workload": workload,
        "data_class": "public",
        "workflow_id": workflow_id,
        "idempotency_key": None,
        "requested_models": [model or "openai/gpt-4.1"],
        "model": model,
        "provider": provider,
        "upstream_model": upstream_model,
        "credential": credential,
        "key_id": key_id,
        "account": KEY_ACCOUNTS.get(key_id, {}) if credential == "byok" else {},
        "attempts": attempts,
        "fallback_used": fallback_used,
        "fallback_reason": None,
        "status": status,
        "error_code": None if status == "ok" else 502,
        "zdr": zdr,
        "usage": {
            "input_tokens": 100,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "output_tokens": 50,
            "reasoning_tokens": 0,
        },
        "cost": {
            "list_usd": str(Decimal(provider_usd) + Decimal(credits)),
            "provider_usd": provider_usd,
            "platform_fee_usd": fee,
            "platform_credits_usd": credits,
        },
    }
    rec.update(extra)
    RequestRecord.model_validate(rec)  # the fixture writer follows the contract exactly
    return rec


def outcome(
    event_id: str,
    ts: str,
    accepted: bool,
    request_id: str | None = None,
    workflow_id: str | None = None,
) -> dict[str, Any]:
    rec = {
        "schema_version": 1,
        "event_id": event_id,
        "ts": ts,
        "request_id": request_id,
        "workflow_id": workflow_id,
        "accepted": accepted,
        "score": None,
        "reason": None,
    }
    OutcomeEvent.model_validate(rec)
    return rec


def write_jsonl(path: Path, records: list[dict[str, Any]], tail: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
        fh.write(tail)
    return path


def acme_day_requests() -> list[dict[str, Any]]:
    """The logged traffic behind tests/fixtures/invoices/acme_2026-03-02 (totals by hand)."""
    t = "2026-03-02T10:00:00.000Z"
    return [
        request("r1", t, provider_usd="1.000000", fee="0.05"),
        request(
            "r2",
            "2026-03-02T11:00:00.000Z",
            api_key_id="assistant-prod",
            provider_usd="3.000000",
            fee="0.15",
            workflow_id="wf-1",
        ),
        request(
            "r3",
            t,
            **STAGING_MINI,
            provider_usd="0.50",
            fee="0.025",
        ),
        request(
            "r4",
            t,
            **SONNET_ON_ANTHROPIC,
            key_id="ant-prod-primary",
            provider_usd="2.00",
            fee="0.10",
        ),
        request(
            "r5",
            t,
            api_key_id="public-chat-staging",
            model="anthropic/claude-3.5-haiku",
            provider="anthropic",
            upstream_model="claude-3-5-haiku-20241022",
            key_id="ant-nonprod",
            provider_usd="0.25",
            fee="0.0125",
        ),
        request(
            "r6",
            t,
            api_key_id="assistant-prod",
            model="anthropic/claude-sonnet-4",
            provider="bedrock",
            upstream_model="anthropic.claude-sonnet-4-20250514-v1:0",
            key_id="bedrock-prod",
            provider_usd="0.90",
            fee="0.05",
            zdr=True,
        ),
        request(
            "r7",
            t,
            model="google/gemini-2.5-flash",
            provider="vertex",
            upstream_model="gemini-2.5-flash",
            credential="shared",
            key_id=None,
            credits="0.30",
            zdr=True,
        ),
        request(
            "r8",
            "2026-03-02T12:00:00.000Z",
            api_key_id="assistant-prod",
            model=None,
            provider=None,
            upstream_model=None,
            credential=None,
            key_id=None,
            status="error",
            workflow_id="wf-1",
            attempts=[
                {
                    "model": "openai/gpt-4.1",
                    "provider": "openai",
                    "credential": "byok",
                    "key_id": "oai-prod-primary",
                    "status": "rate_limited",
                    "http_status": 429,
                    "error_type": "rate_limit",
                    "latency_ms": 20.0,
                }
            ],
        ),
    ]


class Ledger:
    """A temp copy of the Acme config with its data folders, plus helpers to fill them."""

    def __init__(self, root: Path):
        self.root = root
        self.config = root / "ledger.yaml"
        shutil.copy(ACME, self.config)
        self.logs = root / "data" / "logs"
        self.invoices = root / "data" / "invoices"
        self.duckdb = root / "data" / "ledger.duckdb"
        self.invoices.mkdir(parents=True)
        self.logs.mkdir(parents=True)

    def write_requests(
        self, day: str, records: list[dict[str, Any]], name: str = "router-1", tail: str = ""
    ) -> Path:
        return write_jsonl(self.logs / "requests" / f"dt={day}" / f"{name}.jsonl", records, tail)

    def write_outcomes(self, day: str, records: list[dict[str, Any]], name: str = "app-1") -> Path:
        return write_jsonl(self.logs / "outcomes" / f"dt={day}" / f"{name}.jsonl", records)

    def add_invoices(self, fixture: str) -> None:
        shutil.copytree(FIXTURES / "invoices" / fixture, self.invoices, dirs_exist_ok=True)

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        with duckdb.connect(str(self.duckdb), read_only=True) as conn:
            return conn.execute(sql, params).fetchall()

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every mart's full content, ordered, for idempotency comparisons. raw.load_manifest
        is left out: it is a log with one row per file per load, so it grows on every run."""
        out = {}
        with duckdb.connect(str(self.duckdb), read_only=True) as conn:
            for (name,) in conn.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE table_schema IN ('marts', 'staging', 'intermediate', 'raw') "
                "AND table_schema || '.' || table_name <> 'raw.load_manifest' ORDER BY 1"
            ).fetchall():
                out[name] = conn.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
        return out


def day(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


__all__ = ["Ledger", "acme_day_requests", "day", "format_ts", "outcome", "request", "write_jsonl"]


def ledger_assets() -> list:
    """Every asset and check of the ledger's job (from the real code location)."""
    from pipeline.definitions import defs
    from pipeline.defs.reconcile.schedules import LEDGER_GROUPS

    assets = [a for a in defs.assets if set(a.group_names_by_key.values()) <= set(LEDGER_GROUPS)]
    keys = {k for a in assets for k in a.keys}
    checks = [c for c in defs.asset_checks or [] if {k.asset_key for k in c.check_keys} <= keys]
    return [*assets, *checks]


def materialize(
    led: Ledger,
    day: str | None = None,
    start: str | None = None,
    end: str | None = None,
    raise_on_error: bool = False,
):
    """`dg.materialize` of the whole graph for one partition or a single-run range."""
    import dagster as dg

    from pipeline.defs.metadata import RANGE_END, RANGE_START
    from pipeline.defs.resources import build_resources

    tags = {RANGE_START: start, RANGE_END: end} if start else None
    return dg.materialize(
        ledger_assets(),
        partition_key=day,
        tags=tags,
        resources=build_resources(led.config),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
