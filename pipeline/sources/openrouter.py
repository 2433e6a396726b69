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

from .jsonl import MAX_LINE, MAX_RAW, MONEY_MAX, MS_MAX, TOKENS_MAX, Reject, explain

SUBDIR = "openrouter_generations"
MAX_FILE = 256 << 20  # a .json generation file is parsed whole: refuse one over 256 MiB


class Refused(ValueError):
    """A record that cannot load: `reason` is its code (docs/log-contract.md)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{explain(reason)}{': ' + detail if detail else ''}")
        self.reason = reason


def _dec(v: Any, key: str) -> Decimal:
    """A USD amount: a JSON number (read as Decimal, never float) or decimal string, finite,
    0 <= x <= 10^9."""
    if v is None:
        return Decimal(0)
    if isinstance(v, bool) or not isinstance(v, (int, Decimal, str)):
        raise Refused(f"wrong_type:{key}", repr(v)[:80])
    try:
        d = v if isinstance(v, Decimal) else Decimal(str(v).strip())
    except ArithmeticError:
        raise Refused(f"bad_value:{key}", repr(v)[:80]) from None
    if not d.is_finite():
        raise Refused(f"non_finite:{key}", repr(v)[:80])
    if d < 0 or d > MONEY_MAX:
        raise Refused(f"out_of_range:{key}", repr(v)[:80])
    return d


def _int(v: Any, key: str) -> int:
    """A token count: absent/null is 0; otherwise an integer 0..10^12."""
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
        raise Refused(f"wrong_type:{key}", repr(v)[:80])
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise Refused(f"non_finite:{key}", repr(v)[:80])
        if v != v.to_integral_value():
            raise Refused(f"wrong_type:{key}", repr(v)[:80])
    if not 0 <= v <= TOKENS_MAX:
        raise Refused(f"out_of_range:{key}", repr(v)[:80])
    return int(v)


def _ts(v: Any) -> dt.datetime:
    if not isinstance(v, str):
        raise Refused("bad_timestamp:created_at", repr(v)[:80])
    try:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Refused("bad_timestamp:created_at", repr(v)[:80]) from None
    if t.tzinfo is None:
        raise Refused("naive_timestamp", repr(v)[:80])
    return t.astimezone(dt.UTC).replace(tzinfo=None)


def _latency(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
        raise Refused("wrong_type:latency", repr(v)[:80])
    if not (isinstance(v, int) or v.is_finite()) or not 0 <= v <= MS_MAX:
        raise Refused("out_of_range:latency", repr(v)[:80])
    return float(v)


def _str(v: Any, key: str) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise Refused(f"wrong_type:{key}", repr(v)[:80])
    return str(v)


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

    def row(self, rec: dict[str, Any], day: str, source_file: str, n: int) -> dict[str, Any]:
        if not isinstance(rec.get("id"), str) or not rec["id"]:
            raise Refused("missing:id")
        ts = _ts(rec.get("created_at"))
        file_day = dt.date.fromisoformat(day)
        if abs((ts.date() - file_day).days) > 1:
            raise Refused("misfiled_far", f"created_at {rec.get('created_at')} in dt={day}")
        model = _str(rec.get("model"), "model")
        pname = _str(rec.get("provider_name"), "provider_name")
        provider = self.providers.get(pname.lower(), pname.lower()) if pname else None
        if not isinstance(rec.get("is_byok", False), (bool, type(None))):
            raise Refused("wrong_type:is_byok", repr(rec.get("is_byok"))[:80])
        byok = bool(rec.get("is_byok"))
        money_key = "total_cost" if "total_cost" in rec else "usage"
        total = _dec(rec.get(money_key), money_key)
        upstream_cost = _dec(rec.get("upstream_inference_cost"), "upstream_inference_cost")
        key = self.only_key.get(provider) if byok and provider else None
        prompt, cached = (
            _int(rec.get("native_tokens_prompt"), "native_tokens_prompt"),
            _int(rec.get("native_tokens_cached"), "native_tokens_cached"),
        )
        output = _int(rec.get("native_tokens_completion"), "native_tokens_completion")
        reasoning = _int(rec.get("native_tokens_reasoning"), "native_tokens_reasoning")
        account = dict(key.account) if key else {}
        return {
            "day": ts.date(),
            "file_day": file_day,
            "source_record": n,
            "request_id": rec["id"],
            "ts": ts,
            "duration_ms": _latency(rec.get("latency")),
            "api_key_id": None,
            "environment": None,
            "app": _str(rec.get("app_id"), "app_id"),
            "member_id": _str(rec.get("external_user"), "external_user"),
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
            "output_tokens": output,
            "reasoning_tokens": reasoning,
            "list_usd": upstream_cost if byok else total,
            "provider_usd": upstream_cost if byok else Decimal(0),
            "platform_fee_usd": total if byok else Decimal(0),
            "platform_credits_usd": Decimal(0) if byok else total,
            "log_source": "openrouter_generation",
            "source_file": source_file,
        }


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN/Infinity; JSON does not


def _parse(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constants)


def _records(path: Path) -> list[tuple[int, str, Any]]:
    """(line or index, raw text, parsed object or a Refused) for every record in a file."""
    out: list[tuple[int, str, Any]] = []
    if path.suffix == ".jsonl":
        data = path.read_bytes()
        lines = data.split(b"\n")
        for i, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            text = raw.decode("utf-8", errors="replace")
            if len(raw) > MAX_LINE:
                out.append((i, text[:MAX_RAW], Refused("line_too_long")))
                continue
            try:
                raw.decode("utf-8")
                out.append((i, text, _parse(text)))
            except UnicodeDecodeError:
                out.append((i, text[:MAX_RAW], Refused("not_utf8")))
            except (ValueError, RecursionError) as e:
                torn = i == len(lines) and not data.endswith(b"\n")
                out.append((i, text, Refused("torn_line" if torn else "not_json", str(e)[:200])))
        return out
    if path.stat().st_size > MAX_FILE:
        return [(1, "", Refused("line_too_long", f"file over {MAX_FILE} bytes"))]
    data = path.read_bytes()
    try:
        doc = _parse(data.decode("utf-8"))
    except UnicodeDecodeError:
        return [(1, data[:MAX_RAW].decode("utf-8", errors="replace"), Refused("not_utf8"))]
    except (ValueError, RecursionError) as e:
        text = data.decode("utf-8", errors="replace")
        return [(getattr(e, "lineno", 1), text[:MAX_RAW], Refused("not_json", str(e)[:200]))]
    items = doc if isinstance(doc, list) else [doc]
    n = 0
    for item in items:
        data_ = item.get("data") if isinstance(item, dict) and "data" in item else item
        for rec in data_ if isinstance(data_, list) else [data_]:
            n += 1
            out.append((n, json.dumps(rec, default=str)[:MAX_RAW], rec))
    return out


def read_generations(
    cfg: LedgerConfig, files: list[Path]
) -> tuple[list[dict[str, Any]], list[Reject], dict[Path, int]]:
    """Rows for staging.requests (plus file_day and source_record), the rejects with reason
    codes, and the number of records read per file (the manifest's `lines`)."""
    mapper = _Mapper(cfg)
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    counts: dict[Path, int] = {}
    for f in files:
        day = f.parent.name.removeprefix("dt=")
        recs = _records(f)
        counts[f] = len(recs)
        for line, raw, obj in recs:
            try:
                if isinstance(obj, Refused):
                    raise obj
                if isinstance(obj, dict) and isinstance(obj.get("data"), dict):
                    obj = obj["data"]
                if not isinstance(obj, dict):
                    raise Refused("not_object")
                rows.append(mapper.row(obj, day, str(f), line))
            except Refused as e:
                torn = e.reason == "torn_line"
                rejects.append(Reject(str(f), line, e.reason, str(e), raw[:MAX_RAW], torn))
    return rows, rejects, counts
