"""The request-log and outcome-event contracts (the router's log contract, `routing_core.schema`)
as field tables: the one definition of what a loadable line is. `pipeline.sources.jsonl`
generates the SQL validation and the typed values from them; nothing else decides.

Bounds (documented in docs/log-contract.md): token counts 0..10^12, USD amounts 0..10^9 per
record (well inside DECIMAL(38,9), so no SUM can overflow), durations 0..10^9 ms, HTTP and
error codes 0..999.
"""

from __future__ import annotations

from pathlib import Path

from routing_core.schema import ACCOUNT_IDS, OUTCOMES_DIR, REQUESTS_DIR

from .jsonl import MONEY_MAX, MS_MAX, TOKENS_MAX, Field, JsonlSpec


def _s(name: str, required: bool = False) -> Field:
    return Field(name, "str", required)


_MONEY = ("list_usd", "provider_usd", "platform_fee_usd", "platform_credits_usd")
_TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)

ATTEMPT_FIELDS = (
    _s("model"),
    _s("provider"),
    Field("credential", "enum", choices=("byok", "shared")),
    _s("key_id"),
    _s("status", True),
    Field("http_status", "int", lo=0, hi=999),
    _s("error_type"),
    Field("latency_ms", "num", lo=0, hi=MS_MAX),
)

ACCOUNT_TYPE = "STRUCT(" + ", ".join(f"{n} VARCHAR" for n in ACCOUNT_IDS) + ")"
ATTEMPTS_TYPE = (
    "STRUCT(model VARCHAR, provider VARCHAR, credential VARCHAR, key_id VARCHAR, status VARCHAR, "
    "http_status INTEGER, error_type VARCHAR, latency_ms DOUBLE)[]"
)

REQUEST_FIELDS: tuple[Field, ...] = (
    Field("schema_version", "int", True, lo=1, hi=1),
    _s("request_id", True),
    Field("ts", "ts", True),
    Field("duration_ms", "num", lo=0, hi=MS_MAX),
    *(
        _s(n)
        for n in (
            "api_key_id",
            "environment",
            "app",
            "member_id",
            "workload",
            "data_class",
            "workflow_id",
            "idempotency_key",
        )
    ),
    # Informational and read by DuckDB's own typed conversion (a number where text is expected
    # becomes its text; a value that is not a list/object reads as absent): validating them
    # leaf by leaf cost the read 3x, and none of them carries money or identity.
    Field("requested_models", "native", native_type="VARCHAR[]"),
    _s("model"),
    _s("provider"),
    _s("upstream_model"),
    Field("credential", "enum", choices=("byok", "shared")),
    _s("key_id"),
    Field("account", "native", native_type=ACCOUNT_TYPE),
    Field("attempts", "native", native_type=ATTEMPTS_TYPE),
    Field("fallback_used", "bool"),
    _s("fallback_reason"),
    Field("status", "enum", True, choices=("ok", "error")),
    Field("error_code", "int", lo=0, hi=999),
    Field("zdr", "bool"),
    Field(
        "usage",
        "obj",
        True,
        children=tuple(Field(n, "int", True, lo=0, hi=TOKENS_MAX) for n in _TOKENS),
    ),
    Field(
        "cost",
        "obj",
        True,
        children=tuple(Field(n, "money", True, lo=0, hi=MONEY_MAX) for n in _MONEY),
    ),
    Field("usage_source", "enum", choices=("provider", "estimated", "clamped")),
    Field("ttfb_ms", "num", lo=0, hi=MS_MAX),
    Field("stream", "bool"),
    Field("error_reason", "enum", choices=("client_closed", "upstream_interrupted")),
)

OUTCOME_FIELDS: tuple[Field, ...] = (
    Field("schema_version", "int", True, lo=1, hi=1),
    _s("event_id", True),
    Field("ts", "ts", True),
    _s("request_id"),
    _s("workflow_id"),
    Field("accepted", "bool", True),
    Field("score", "num", lo=-(10**9), hi=10**9),
    _s("reason"),
)

# A record more than a day away from its dt= folder is quarantined (a clock or shipper bug):
# within a day it is loaded under its UTC day (an offset or a late flush across midnight).
_FAR = (
    "abs(date_diff('day', file_day, CAST(v_ts AS DATE))) > 1",
    "misfiled_far",
)
_NEEDS_ID = ("f_request_id IS NULL AND f_workflow_id IS NULL", "missing:request_id")

REQUEST_SPEC = JsonlSpec("requests", REQUEST_FIELDS, (_FAR,))
OUTCOME_SPEC = JsonlSpec("outcomes", OUTCOME_FIELDS, (_NEEDS_ID, _FAR))


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
