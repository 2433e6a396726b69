"""OpenRouter generation records (`GET /api/v1/generation?id=...`, the `data` object) mapped into
request-log rows, for teams already routing through OpenRouter.

Files: `<logs>/openrouter_generations/dt=YYYY-MM-DD/*.json` (one response `{"data": {...}}`, or
`{"data": [...]}`, or a JSON list of either) or `*.jsonl` (one response or bare record per line).
Money (`total_cost`, `usage`, `upstream_inference_cost`) is parsed as Decimal from the JSON text.

Mapping: BYOK generations (`is_byok`) bill the inference on the customer's provider account
(`upstream_inference_cost` -> `provider_usd`) and the platform fee on the statement
(`total_cost` -> `platform_fee_usd`); shared ones are platform credits (`total_cost` ->
`platform_credits_usd`). `provider_name` is matched to a provider's `statement_name` (or id).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from routing_core.config import LedgerConfig

from .jsonl import MAX_RAW, Reject

SUBDIR = "openrouter_generations"


def _dec(v: Any) -> Decimal:
    if v is None:
        return Decimal(0)
    if isinstance(v, bool):
        raise ValueError("money is a boolean")
    return Decimal(str(v)) if not isinstance(v, Decimal) else v


def _int(v: Any) -> int:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else 0


def _ts(v: Any) -> dt.datetime:
    if not isinstance(v, str):
        raise ValueError(f"created_at is not a timestamp: {v!r}")
    t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).replace(tzinfo=None)


class _Mapper:
    def __init__(self, cfg: LedgerConfig):
        self.providers = {}
        for p in cfg.providers:
            self.providers[p.id.lower()] = p.id
            if p.statement_name:
                self.providers[p.statement_name.lower()] = p.id
        self.upstream = {
            (m.id, e.provider): e.upstream_model for m in cfg.models for e in m.endpoints
        }
        by_provider: dict[str, list] = {}
        for k in cfg.byok_keys:
            by_provider.setdefault(k.provider, []).append(k)
        # OpenRouter does not say which of several BYOK keys served: only a lone key is certain.
        self.only_key = {p: ks[0] for p, ks in by_provider.items() if len(ks) == 1}

    def row(self, rec: dict[str, Any], day: str, source_file: str) -> dict[str, Any]:
        if not isinstance(rec.get("id"), str) or not rec["id"]:
            raise ValueError("id missing")
        ts = _ts(rec.get("created_at"))
        model = rec.get("model")
        pname = rec.get("provider_name")
        provider = self.providers.get(str(pname).lower(), str(pname).lower()) if pname else None
        byok = bool(rec.get("is_byok"))
        total = _dec(rec.get("total_cost", rec.get("usage")))
        upstream_cost = _dec(rec.get("upstream_inference_cost"))
        key = self.only_key.get(provider) if byok and provider else None
        prompt, cached = (
            _int(rec.get("native_tokens_prompt")),
            _int(rec.get("native_tokens_cached")),
        )
        account = dict(key.account) if key else {}
        return {
            "day": dt.date.fromisoformat(day),
            "request_id": rec["id"],
            "ts": ts,
            "duration_ms": float(rec["latency"])
            if isinstance(rec.get("latency"), (int, float, Decimal))
            else None,
            "api_key_id": None,
            "environment": None,
            "app": str(rec["app_id"]) if rec.get("app_id") is not None else None,
            "member_id": rec.get("external_user"),
            "workload": None,
            "data_class": None,
            "workflow_id": None,
            "idempotency_key": None,
            "requested_models": [model] if model else [],
            "model": model,
            "provider": provider,
            "upstream_model": self.upstream.get((model, provider), model),
            "credential": "byok" if byok else "shared",
            "key_id": key.id if key else None,
            "acct_project_id": account.get("project_id"),
            "acct_api_key_id": account.get("api_key_id"),
            "acct_workspace_id": account.get("workspace_id"),
            "acct_sub_account_id": account.get("sub_account_id"),
            "acct_billing_account_id": account.get("billing_account_id"),
            "acct_organization_id": account.get("organization_id"),
            "attempts": [],
            "n_attempts": 1,
            "fallback_used": False,
            "fallback_reason": None,
            "status": "error" if rec.get("finish_reason") == "error" else "ok",
            "error_code": None,
            "zdr": None,
            "input_tokens": max(prompt - cached, 0),
            "cache_read_tokens": cached,
            "cache_write_tokens": 0,
            "output_tokens": _int(rec.get("native_tokens_completion")),
            "reasoning_tokens": _int(rec.get("native_tokens_reasoning")),
            "list_usd": upstream_cost if byok else total,
            "provider_usd": upstream_cost if byok else Decimal(0),
            "platform_fee_usd": total if byok else Decimal(0),
            "platform_credits_usd": Decimal(0) if byok else total,
            "log_source": "openrouter_generation",
            "source_file": source_file,
        }


def _records(path: Path) -> list[tuple[int, str, Any]]:
    """(line or index, raw text, parsed object or exception) for every record in a file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    out: list[tuple[int, str, Any]] = []
    if path.suffix == ".jsonl":
        for i, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    out.append((i, line, json.loads(line, parse_float=Decimal)))
                except ValueError as e:
                    out.append((i, line, e))
        return out
    try:
        doc = json.loads(text, parse_float=Decimal)
    except ValueError as e:
        return [(getattr(e, "lineno", 1), text[:MAX_RAW], e)]
    items = doc if isinstance(doc, list) else [doc]
    for i, item in enumerate(items, start=1):
        data = item.get("data") if isinstance(item, dict) and "data" in item else item
        for j, rec in enumerate(data if isinstance(data, list) else [data], start=1):
            out.append((i if not isinstance(data, list) else j, json.dumps(rec, default=str), rec))
    return out


def read_generations(
    cfg: LedgerConfig, files: list[Path]
) -> tuple[list[dict[str, Any]], list[Reject], int]:
    """Rows for staging.requests, rejects, and the number of records read."""
    mapper = _Mapper(cfg)
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    n = 0
    for f in files:
        day = f.parent.name.removeprefix("dt=")
        for line, raw, obj in _records(f):
            n += 1
            if isinstance(obj, Exception):
                rejects.append(Reject(str(f), line, f"invalid JSON: {obj}", raw[:MAX_RAW]))
                continue
            if isinstance(obj, dict) and isinstance(obj.get("data"), dict):
                obj = obj["data"]
            try:
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
                rows.append(mapper.row(obj, day, str(f)))
            except (ValueError, ArithmeticError) as e:
                rejects.append(Reject(str(f), line, f"not a generation record: {e}", raw[:MAX_RAW]))
    return rows, rejects, n
