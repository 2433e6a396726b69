"""The request-log and outcome-event contracts (SPEC §6, `routing_core.schema`) as read specs:
explicit DuckDB column types, the SQL check that marks a row as breaking the contract, and its
Python twin used on the line-by-line pass (so both paths reject the same lines)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from routing_core.schema import OUTCOMES_DIR, REQUESTS_DIR

from .jsonl import JsonlSpec

ATTEMPT_TYPE = (
    "STRUCT(model VARCHAR, provider VARCHAR, credential VARCHAR, key_id VARCHAR, status VARCHAR, "
    "http_status INTEGER, error_type VARCHAR, latency_ms DOUBLE)[]"
)
ACCOUNT_TYPE = (
    "STRUCT(project_id VARCHAR, api_key_id VARCHAR, workspace_id VARCHAR, sub_account_id VARCHAR, "
    "billing_account_id VARCHAR, organization_id VARCHAR)"
)
USAGE_TYPE = (
    "STRUCT(input_tokens BIGINT, cache_read_tokens BIGINT, cache_write_tokens BIGINT, "
    "output_tokens BIGINT, reasoning_tokens BIGINT)"
)
# Money stays text until a DECIMAL cast: it never passes through a float.
COST_TYPE = (
    "STRUCT(list_usd VARCHAR, provider_usd VARCHAR, platform_fee_usd VARCHAR, "
    "platform_credits_usd VARCHAR)"
)

REQUEST_COLUMNS = {
    "schema_version": "INTEGER",
    "request_id": "VARCHAR",
    "ts": "VARCHAR",
    "duration_ms": "DOUBLE",
    "api_key_id": "VARCHAR",
    "environment": "VARCHAR",
    "app": "VARCHAR",
    "member_id": "VARCHAR",
    "workload": "VARCHAR",
    "data_class": "VARCHAR",
    "workflow_id": "VARCHAR",
    "idempotency_key": "VARCHAR",
    "requested_models": "VARCHAR[]",
    "model": "VARCHAR",
    "provider": "VARCHAR",
    "upstream_model": "VARCHAR",
    "credential": "VARCHAR",
    "key_id": "VARCHAR",
    "account": ACCOUNT_TYPE,
    "attempts": ATTEMPT_TYPE,
    "fallback_used": "BOOLEAN",
    "fallback_reason": "VARCHAR",
    "status": "VARCHAR",
    "error_code": "INTEGER",
    "zdr": "BOOLEAN",
    "usage": USAGE_TYPE,
    "cost": COST_TYPE,
}

_MONEY = ("list_usd", "provider_usd", "platform_fee_usd", "platform_credits_usd")

# Typed once in the read (the insert reuses them), then checked against the contract.
REQUEST_TYPED_SQL = "try_cast(ts AS TIMESTAMP) AS ts_t, " + ", ".join(
    f"try_cast(cost.{m} AS DECIMAL(38, 9)) AS {m}_d"
    for m in ("list_usd", "provider_usd", "platform_fee_usd", "platform_credits_usd")
)

REQUEST_INVALID_SQL = (
    "schema_version IS DISTINCT FROM 1 OR request_id IS NULL OR request_id = '' "
    "OR ts_t IS NULL OR status IS NULL OR status NOT IN ('ok', 'error') "
    "OR (credential IS NOT NULL AND credential NOT IN ('byok', 'shared')) "
    "OR cost IS NULL OR usage IS NULL "
    + " ".join(
        f"OR (cost.{m} IS NOT NULL AND {m}_d IS NULL)"
        for m in ("list_usd", "provider_usd", "platform_fee_usd", "platform_credits_usd")
    )
)

OUTCOME_COLUMNS = {
    "schema_version": "INTEGER",
    "event_id": "VARCHAR",
    "ts": "VARCHAR",
    "request_id": "VARCHAR",
    "workflow_id": "VARCHAR",
    "accepted": "BOOLEAN",
    "score": "DOUBLE",
    "reason": "VARCHAR",
}

OUTCOME_INVALID_SQL = (
    "schema_version IS DISTINCT FROM 1 OR event_id IS NULL OR event_id = '' "
    "OR try_cast(ts AS TIMESTAMP) IS NULL OR accepted IS NULL "
    "OR (request_id IS NULL AND workflow_id IS NULL)"
)


def _ts_ok(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _opt(obj: dict, key: str, types: tuple[type, ...]) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) and bool not in types:
        return f"{key}: expected {types[0].__name__}, got a boolean"
    if not isinstance(v, types):
        return f"{key}: expected {types[0].__name__}, got {type(v).__name__}"
    return None


def check_request(obj: Any) -> str | None:
    """Why a parsed request line breaks the contract, or None when it is loadable."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("schema_version") != 1:
        return f"schema_version must be 1, got {obj.get('schema_version')!r}"
    if not isinstance(obj.get("request_id"), str) or not obj["request_id"]:
        return "request_id missing or not a string"
    if not _ts_ok(obj.get("ts")):
        return f"ts is not an RFC 3339 timestamp: {obj.get('ts')!r}"
    if obj.get("status") not in ("ok", "error"):
        return f"status must be ok or error, got {obj.get('status')!r}"
    if obj.get("credential") not in (None, "byok", "shared"):
        return f"credential must be byok, shared or null, got {obj.get('credential')!r}"
    for key, types in (
        ("duration_ms", (float, int)),
        ("error_code", (int,)),
        ("zdr", (bool,)),
        ("fallback_used", (bool,)),
        ("requested_models", (list,)),
        ("attempts", (list,)),
        ("account", (dict,)),
    ):
        err = _opt(obj, key, types)
        if err:
            return err
    for key in (
        "api_key_id",
        "environment",
        "app",
        "member_id",
        "workload",
        "model",
        "provider",
        "upstream_model",
        "key_id",
        "workflow_id",
        "fallback_reason",
    ):
        err = _opt(obj, key, (str,))
        if err:
            return err
    for a in obj.get("attempts") or []:
        if not isinstance(a, dict):
            return "attempts: each attempt must be an object"
        for key, types in (("http_status", (int,)), ("latency_ms", (float, int))):
            err = _opt(a, key, types)
            if err:
                return f"attempts[].{err}"
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return "usage missing or not an object"
    for k, v in usage.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            return f"usage.{k}: expected an integer, got {v!r}"
    cost = obj.get("cost")
    if not isinstance(cost, dict):
        return "cost missing or not an object"
    for m in _MONEY:
        v = cost.get(m)
        if v is None:
            continue
        if isinstance(v, float):
            return f"cost.{m}: money must be a decimal string, got the float {v!r}"
        try:
            Decimal(str(v))
        except InvalidOperation:
            return f"cost.{m}: {v!r} is not a decimal amount"
    return None


def check_outcome(obj: Any) -> str | None:
    """Why a parsed outcome line breaks the contract, or None when it is loadable."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("schema_version") != 1:
        return f"schema_version must be 1, got {obj.get('schema_version')!r}"
    if not isinstance(obj.get("event_id"), str) or not obj["event_id"]:
        return "event_id missing or not a string"
    if not _ts_ok(obj.get("ts")):
        return f"ts is not an RFC 3339 timestamp: {obj.get('ts')!r}"
    if not isinstance(obj.get("accepted"), bool):
        return "accepted must be true or false"
    if obj.get("request_id") is None and obj.get("workflow_id") is None:
        return "an outcome needs request_id or workflow_id"
    err = _opt(obj, "score", (float, int))
    return err


REQUEST_SPEC = JsonlSpec(
    "requests", REQUEST_COLUMNS, REQUEST_INVALID_SQL, check_request, REQUEST_TYPED_SQL
)
OUTCOME_SPEC = JsonlSpec("outcomes", OUTCOME_COLUMNS, OUTCOME_INVALID_SQL, check_outcome)


def day_files(root: Path, sub: str, days: list[str], patterns: tuple[str, ...]) -> list[Path]:
    """Files of `<root>/<sub>/dt=<day>/` matching `patterns`, sorted (deterministic order)."""
    out: list[Path] = []
    for d in days:
        folder = root / sub / f"dt={d}"
        if folder.is_dir():
            for pat in patterns:
                out.extend(p for p in folder.glob(pat) if p.is_file())
    return sorted(set(out))


def request_files(logs_dir: Path, days: list[str]) -> list[Path]:
    return day_files(logs_dir, REQUESTS_DIR, days, ("*.jsonl",))


def outcome_files(logs_dir: Path, days: list[str]) -> list[Path]:
    return day_files(logs_dir, OUTCOMES_DIR, days, ("*.jsonl",))


def days_with_logs(logs_dir: Path) -> list[str]:
    """Every dt= day present under requests/ (and openrouter_generations/)."""
    days: set[str] = set()
    for sub in (REQUESTS_DIR, "openrouter_generations"):
        folder = logs_dir / sub
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_dir() and p.name.startswith("dt=") and any(p.iterdir()):
                    days.add(p.name[3:])
    return sorted(days)
