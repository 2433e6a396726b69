"""Contract audit: the names SPEC.md writes `like_this` for the CLI (§3), the `explain --json`
shape and reason codes (§3), the top-level config keys (§4) and the request record / outcome
event (§6) are exactly what the code accepts and writes.

The expected names are copied from SPEC.md here on purpose (not imported from the code), so
a rename in the code — or an extra key — fails this file.
"""

from __future__ import annotations

import argparse
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from byok_ledger.cli import build_parser, main
from routing_core import routes
from routing_core.config import ConfigError, LedgerConfig, load_config, parse_config
from routing_core.request_log import read_jsonl
from routing_core.router import Router
from routing_core.routes import RouteError
from routing_core.schema import OUTCOME_FIELDS, REQUEST_FIELDS, REQUEST_OPTIONAL_FIELDS
from simulator.fake_providers import demo_secrets, start_fleet

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "examples" / "acme" / "ledger.yaml"

# --------------------------------------------------------------------------- SPEC §3

SPEC_COMMANDS = {
    "demo": {"--out", "--days", "--requests-per-day", "--seed"},
    "run": {"--config", "--start", "--end"},
    "explain": {
        "--config",
        "--api-key",
        "--model",
        "--workload",
        "--member",
        "--zdr",
        "--json",
    },
    "check-config": set(),  # positional FILE
    "report": {"--config", "--month"},
    "alerts": {"--config", "--dry-run"},
    "simulate": {"--config", "--out", "--days", "--requests-per-day", "--seed"},
    "scenarios": {"--config"},  # plus positional NAME ...
    "serve": {"--config", "--host", "--port", "--workers"},
    "ui": {"--config", "--port"},
    "export": {"--config", "--month", "--format", "--out"},
}

SPEC_REASON_CODES = {
    "model_not_allowed",
    "provider_not_allowed",
    "provider_ignored",
    "zdr_required",
    "data_collection",
    "key_filter_model",
    "key_filter_api_key",
    "key_filter_member",
    "strict_byok",
    "shared_fallback_disabled",
    "missing_capability",
    "over_max_price",
    "key_disabled",
}

ATTEMPT_PLAN_KEYS = {"model", "provider", "credential", "key_id", "tier"}
EXCLUDED_KEYS = {"model", "provider", "credential", "key_id", "reason"}

# --------------------------------------------------------------------------- SPEC §4 / §6

SPEC_TOP_LEVEL = {
    "paths",
    "providers",
    "models",
    "shared_capacity",
    "platform",
    "byok_keys",
    "api_keys",
    "members",
    "guardrails",
    "workloads",
    "budgets",
    "alerts",
}
EXTENSION_TOP_LEVEL = {"router", "pipeline"}  # documented in docs/config.md

SPEC_REQUEST_FIELDS = {
    "schema_version",
    "request_id",
    "ts",
    "duration_ms",
    "api_key_id",
    "environment",
    "app",
    "member_id",
    "workload",
    "data_class",
    "workflow_id",
    "idempotency_key",
    "requested_models",
    "model",
    "provider",
    "upstream_model",
    "credential",
    "key_id",
    "account",
    "attempts",
    "fallback_used",
    "fallback_reason",
    "status",
    "error_code",
    "zdr",
    "usage",
    "cost",
}
SPEC_LOG_ATTEMPT_KEYS = {
    "model",
    "provider",
    "credential",
    "key_id",
    "status",
    "http_status",
    "error_type",
    "latency_ms",
}
SPEC_USAGE_KEYS = {
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
}
SPEC_COST_KEYS = {"list_usd", "provider_usd", "platform_fee_usd", "platform_credits_usd"}
# SPEC §6 says "`request_id` or `workflow_id`": both keys are written, one of them null.
SPEC_OUTCOME_FIELDS = {
    "schema_version",
    "event_id",
    "ts",
    "request_id",
    "workflow_id",
    "accepted",
    "score",
    "reason",
}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
DECIMAL_STRING = re.compile(r"^-?\d+(\.\d+)?$")


# --------------------------------------------------------------------------- (a) CLI surface


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_cli_has_exactly_the_spec_commands() -> None:
    parser = build_parser()
    assert set(_subparsers(parser)) == set(SPEC_COMMANDS)
    help_text = parser.format_help()
    for cmd in SPEC_COMMANDS:
        assert re.search(rf"^\s+{re.escape(cmd)}\s", help_text, re.M), cmd


@pytest.mark.parametrize("command", sorted(SPEC_COMMANDS))
def test_each_command_accepts_the_spec_flags(command: str) -> None:
    sub = _subparsers(build_parser())[command]
    flags = {s for a in sub._actions for s in a.option_strings}
    missing = SPEC_COMMANDS[command] - flags
    assert not missing, f"{command} lacks SPEC flags {sorted(missing)}"


def test_spec_command_lines_parse_to_the_right_values() -> None:
    p = build_parser()
    a = p.parse_args(
        ["demo", "--out", "D", "--days", "3", "--requests-per-day", "9", "--seed", "5"]
    )
    assert (a.out, a.days, a.requests_per_day, a.seed) == ("D", 3, 9, 5)
    a = p.parse_args(["run", "--config", "c.yaml", "--start", "2026-11-01", "--end", "2026-11-02"])
    assert (a.config, a.start, a.end) == ("c.yaml", "2026-11-01", "2026-11-02")
    a = p.parse_args(
        ["explain", "--config", "c", "--api-key", "k", "--model", "m1", "--model", "m2",
         "--workload", "w", "--member", "u", "--zdr", "--json"]
    )  # fmt: skip
    assert (a.api_key, a.model, a.workload, a.member, a.zdr, a.json) == (
        "k", ["m1", "m2"], "w", "u", True, True
    )  # fmt: skip
    assert p.parse_args(["check-config", "f.yaml"]).file == "f.yaml"
    a = p.parse_args(["report", "--config", "c", "--month", "2026-11"])
    assert (a.config, a.month) == ("c", "2026-11")
    a = p.parse_args(["alerts", "--config", "c", "--dry-run"])
    assert (a.config, a.dry_run) == ("c", True)
    a = p.parse_args(["simulate", "--config", "c", "--out", "o", "--days", "2",
                      "--requests-per-day", "7", "--seed", "1"])  # fmt: skip
    assert (a.config, a.out, a.days, a.requests_per_day, a.seed) == ("c", "o", 2, 7, 1)
    a = p.parse_args(["scenarios", "one", "two", "--config", "c"])
    assert (a.names, a.config) == (["one", "two"], "c")
    a = p.parse_args(["scenarios"])  # NAME ... and --config are optional
    assert a.names == []


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],  # --config is required
        ["explain", "--config", "c", "--model", "m"],  # --api-key is required
        ["explain", "--config", "c", "--api-key", "k"],  # --model is required
        ["check-config"],  # FILE is required
        ["report"],  # --config is required (--month defaults to the last month with data)
        ["serve"],  # --config is required
        ["ui"],  # --config is required
        ["export", "--config", "c", "--month", "2026-11", "--out", "x"],  # --format is required
        ["alerts"],  # --config is required
        ["simulate"],  # --out is required
    ],
)
def test_spec_required_arguments_are_required(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2


# --------------------------------------------------------------------------- (b) explain --json

ACME_TEXT = ACME.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def audit_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Acme plus the two ingredients it lacks for SPEC's full reason-code list: a key with a
    member filter and a disabled key."""
    text = ACME_TEXT.replace(
        "filters: { api_keys: [batch-prod] }",
        "filters: { api_keys: [batch-prod], members: [carol] }",
    ).replace(
        "secret_env: ACME_OPENAI_NONPROD_KEY\n    order: 1",
        "secret_env: ACME_OPENAI_NONPROD_KEY\n    order: 1\n    disabled: true",
    )
    assert text.count("members: [carol]") == 1 and text.count("disabled: true") == 1
    p = tmp_path_factory.mktemp("audit") / "ledger.yaml"
    p.write_text(text, encoding="utf-8")
    return p


# Each case names a request and the SPEC reason code it must produce.
EXPLAIN_CASES = [
    ("model_not_allowed", ["--api-key", "legal-prod", "--model", "openai/gpt-4.1"]),
    ("provider_not_allowed", ["--api-key", "assistant-prod", "--model", "google/gemini-2.5-flash"]),
    ("provider_ignored", ["--api-key", "public-chat-prod", "--model", "openai/gpt-4.1",
                          "--provider-ignore", "openai"]),
    ("zdr_required", ["--api-key", "public-chat-prod", "--model", "openai/gpt-4.1", "--zdr"]),
    ("data_collection", ["--api-key", "public-chat-prod", "--model",
                         "meta-llama/llama-3.3-70b-instruct", "--data-collection", "deny"]),
    ("key_filter_model", ["--api-key", "public-chat-prod", "--model", "anthropic/claude-opus-4.1"]),
    ("key_filter_api_key", ["--api-key", "public-chat-prod", "--model", "anthropic/claude-sonnet-4"]),
    ("key_filter_member", ["--api-key", "batch-prod", "--model", "openai/gpt-4o-mini",
                           "--member", "erin"]),
    ("strict_byok", ["--api-key", "legal-prod", "--model", "anthropic/claude-sonnet-4"]),
    ("shared_fallback_disabled", ["--api-key", "finance-prod", "--model",
                                  "anthropic/claude-sonnet-4"]),
    ("missing_capability", ["--api-key", "public-chat-prod", "--model",
                            "meta-llama/llama-3.3-70b-instruct", "--require", "tools"]),
    ("over_max_price", ["--api-key", "public-chat-prod", "--model", "openai/gpt-4.1",
                        "--max-price-output", "1"]),
    ("key_disabled", ["--api-key", "public-chat-staging", "--model", "openai/gpt-4.1"]),
]  # fmt: skip


def _documented_extra_codes() -> set[str]:
    """Reason codes documented beyond SPEC's list: the rows of the reason-code table in
    docs/routing.md (`key_filter_model` / `_api_key` ... expand to full names)."""
    text = (ROOT / "docs" / "routing.md").read_text(encoding="utf-8")
    section = text.split("### Reason codes", 1)[1].split("\n### ", 1)[0]
    codes: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split("|")[1]
        names = re.findall(r"`([a-z_]+)`", cell)
        base = names[0]
        codes.add(base)
        for suffix in names[1:]:  # `_api_key` abbreviates key_filter_api_key
            codes.add(base.rsplit("_", 1)[0] + suffix if suffix.startswith("_") else suffix)
    return codes - SPEC_REASON_CODES


def _explain_json(config: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    rc = main(["explain", "--config", str(config), *args, "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out  # SPEC: exit 0 even when nothing is eligible
    lines = out.strip().splitlines()
    assert len(lines) == 1, "explain --json prints exactly one JSON object"
    return json.loads(lines[0])


def _assert_explain_shape(doc: dict) -> None:
    assert set(doc) == {"attempts", "excluded", "error"}
    for a in doc["attempts"]:
        assert set(a) == ATTEMPT_PLAN_KEYS, a
        assert a["credential"] in ("byok", "shared")
        assert a["tier"] in ("prioritized", "shared", "fallback")
        # shared capacity has no key id; a BYOK attempt always names its key
        assert (a["key_id"] is None) == (a["credential"] == "shared"), a
        assert (a["tier"] == "shared") == (a["credential"] == "shared"), a
    for e in doc["excluded"]:
        assert set(e) == EXCLUDED_KEYS, e
        assert isinstance(e["reason"], str) and e["reason"]
    err = doc["error"]
    assert err is None or (set(err) == {"code", "message"} and isinstance(err["code"], int))
    if not doc["attempts"]:
        assert err is not None, "an empty plan must say why"


@pytest.mark.parametrize(("code", "args"), EXPLAIN_CASES, ids=[c for c, _ in EXPLAIN_CASES])
def test_explain_json_shape_and_each_spec_reason_code(
    code: str, args: list[str], audit_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _explain_json(audit_config, args, capsys)
    _assert_explain_shape(doc)
    reasons = {e["reason"] for e in doc["excluded"]}
    assert code in reasons, f"expected {code}, got {sorted(reasons)}"
    unexpected = reasons - SPEC_REASON_CODES - _documented_extra_codes()
    assert not unexpected, f"undocumented reason codes {sorted(unexpected)}"


def test_explain_json_when_nothing_is_eligible(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--api-key",
        "legal-prod",
        "--model",
        "openai/gpt-4.1",
        "--workload",
        "financial-analysis",
    ]
    doc = _explain_json(ACME, args, capsys)
    _assert_explain_shape(doc)
    assert doc["attempts"] == []
    assert doc["error"]["code"] in (403, 404)


def test_explain_json_attempt_tiers(capsys: pytest.CaptureFixture[str]) -> None:
    """A plan with all three tiers: prioritized BYOK, shared, then fallback-tier BYOK."""
    doc = _explain_json(ACME, ["--api-key", "batch-prod", "--model", "openai/gpt-4o-mini"], capsys)
    _assert_explain_shape(doc)
    # tiers are ordered within each model (the plan goes model by model)
    tiers = [a["tier"] for a in doc["attempts"] if a["model"] == "openai/gpt-4o-mini"]
    assert tiers == sorted(tiers, key=["prioritized", "shared", "fallback"].index)
    assert {"prioritized", "shared", "fallback"} <= set(tiers)
    assert doc["error"] is None


def test_every_reason_code_in_routes_is_spec_or_documented() -> None:
    defined = {
        v for k, v in vars(routes).items() if k.isupper() and isinstance(v, str) and v.islower()
    }
    assert defined >= SPEC_REASON_CODES
    assert not (defined - SPEC_REASON_CODES - _documented_extra_codes())


# --------------------------------------------------------------------------- (c) request log


@pytest.fixture(scope="module")
def router_logs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One served request (after a 429 failover), one policy failure and one outcome event,
    written by the real Router against loopback fake providers."""
    cfg = load_config(ACME)
    secrets = demo_secrets(cfg)
    logs = tmp_path_factory.mktemp("logs")
    prompt = "CONTRACT-AUDIT-PROMPT please summarise"
    with start_fleet(cfg, secrets) as fleet:
        fleet["openai"].add_fault("rate_limit", key="oai-prod-primary", times=1)
        with Router(
            cfg,
            log_dir=logs,
            writer_id="contract-audit",
            secrets=secrets,
            base_urls=fleet.base_urls,
            seed_spend_from_logs=False,
        ) as router:
            ok = router.complete(
                api_key_id="public-chat-prod",
                model="openai/gpt-4.1-mini",
                messages=[{"role": "user", "content": prompt}],
                max_tokens=64,
                workflow_id="wf-contract",
            )
            with pytest.raises(RouteError) as failed:
                router.complete(
                    api_key_id="legal-prod",
                    model="openai/gpt-4.1",
                    workload="financial-analysis",  # no model fallbacks: nothing is eligible
                    messages=[{"role": "user", "content": prompt}],
                )
            router.record_outcome(request_id=ok.request_id, accepted=True, score=0.9)
            router.record_outcome(workflow_id="wf-contract", accepted=False, reason="too long")
    files = sorted(logs.rglob("*.jsonl"))
    return {
        "logs": logs,
        "files": files,
        "text": "".join(f.read_text() for f in files),
        "requests": {
            r["request_id"]: r for f in files if "requests" in f.parts for r in read_jsonl(f)
        },
        "outcomes": [r for f in files if "outcomes" in f.parts for r in read_jsonl(f)],
        "ok_id": ok.request_id,
        "failed_code": failed.value.code,
        "failed_id": failed.value.metadata["request_id"],
        "secrets": secrets,
        "prompt": prompt,
    }


def test_schema_module_matches_spec_field_names() -> None:
    assert set(REQUEST_FIELDS) == SPEC_REQUEST_FIELDS
    assert set(OUTCOME_FIELDS) == SPEC_OUTCOME_FIELDS


def test_log_file_layout(router_logs: dict) -> None:
    rel = {f.relative_to(router_logs["logs"]).as_posix() for f in router_logs["files"]}
    day = router_logs["requests"][router_logs["ok_id"]]["ts"][:10]
    assert rel == {
        f"requests/dt={day}/contract-audit.jsonl",
        f"outcomes/dt={day}/contract-audit.jsonl",
    }
    for f in router_logs["files"]:
        assert f.read_bytes().endswith(b"\n")  # one complete line per record


def _assert_request_record(rec: dict) -> None:
    # The contract's fields, plus only the documented optional ones (usage_source, ...).
    assert SPEC_REQUEST_FIELDS <= set(rec) <= SPEC_REQUEST_FIELDS | set(REQUEST_OPTIONAL_FIELDS)
    assert rec["schema_version"] == 1
    assert RFC3339_UTC.match(rec["ts"]), rec["ts"]
    assert isinstance(rec["requested_models"], list)
    assert isinstance(rec["account"], dict)
    assert rec["status"] in ("ok", "error")
    assert rec["credential"] in ("byok", "shared", None)
    assert isinstance(rec["fallback_used"], bool)
    assert set(rec["usage"]) == SPEC_USAGE_KEYS
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in rec["usage"].values())
    assert set(rec["cost"]) == SPEC_COST_KEYS
    for k, v in rec["cost"].items():
        assert isinstance(v, str) and DECIMAL_STRING.match(v), (k, v)  # never a JSON number
        Decimal(v)
    for a in rec["attempts"]:
        assert set(a) == SPEC_LOG_ATTEMPT_KEYS, a
        assert a["credential"] in ("byok", "shared")


def test_served_request_record_has_exactly_the_spec_fields(router_logs: dict) -> None:
    rec = router_logs["requests"][router_logs["ok_id"]]
    _assert_request_record(rec)
    assert rec["status"] == "ok" and rec["error_code"] is None
    assert rec["requested_models"][0] == "openai/gpt-4.1-mini"
    assert (rec["provider"], rec["credential"], rec["key_id"]) == (
        "openai",
        "byok",
        "oai-prod-backup",
    )
    assert rec["account"] == {"project_id": "proj_acme_prod", "api_key_id": "key_prod_backup"}
    assert rec["workflow_id"] == "wf-contract"
    # the 429 on the primary key is the first attempt; the served one is the last
    first, last = rec["attempts"][0], rec["attempts"][-1]
    assert (first["key_id"], first["http_status"]) == ("oai-prod-primary", 429)
    assert (last["key_id"], last["status"], last["http_status"]) == ("oai-prod-backup", "ok", 200)
    assert rec["fallback_used"] is True and rec["fallback_reason"]
    assert rec["usage"]["input_tokens"] > 0 and rec["usage"]["output_tokens"] > 0
    cost = {k: Decimal(v) for k, v in rec["cost"].items()}
    assert cost["list_usd"] > 0 and cost["provider_usd"] > 0 and cost["platform_credits_usd"] == 0


def test_failed_request_record_has_the_same_fields(router_logs: dict) -> None:
    rec = router_logs["requests"][router_logs["failed_id"]]
    _assert_request_record(rec)
    assert rec["status"] == "error" and rec["error_code"] == router_logs["failed_code"]
    assert rec["model"] is None and rec["credential"] is None and rec["attempts"] == []
    assert all(Decimal(v) == 0 for v in rec["cost"].values())


def test_outcome_events_have_exactly_the_spec_fields(router_logs: dict) -> None:
    events = router_logs["outcomes"]
    assert len(events) == 2
    for ev in events:
        assert set(ev) == SPEC_OUTCOME_FIELDS
        assert ev["schema_version"] == 1 and RFC3339_UTC.match(ev["ts"])
        assert isinstance(ev["accepted"], bool)
        assert (ev["request_id"] is None) != (ev["workflow_id"] is None)
    by_req = next(e for e in events if e["request_id"])
    assert (by_req["request_id"], by_req["accepted"], by_req["score"]) == (
        router_logs["ok_id"], True, 0.9
    )  # fmt: skip
    by_wf = next(e for e in events if e["workflow_id"])
    assert (by_wf["accepted"], by_wf["reason"]) == (False, "too long")


def test_logs_hold_no_secret_and_no_prompt(router_logs: dict) -> None:
    text = router_logs["text"]
    assert router_logs["requests"], "nothing was logged"
    for secret in router_logs["secrets"].values():
        assert secret not in text
    assert "demo-secret-" not in text
    assert router_logs["prompt"] not in text and "CONTRACT-AUDIT" not in text


# --------------------------------------------------------------------------- (d) config keys


def test_config_model_top_level_keys_are_spec_plus_extensions() -> None:
    fields = set(LedgerConfig.model_fields) - {"source"}  # `source` is set by load_config
    assert fields == SPEC_TOP_LEVEL | EXTENSION_TOP_LEVEL


def test_example_config_uses_every_spec_top_level_key() -> None:
    import yaml

    data = yaml.safe_load(ACME_TEXT)
    assert set(data) >= SPEC_TOP_LEVEL
    cfg = load_config(ACME)
    assert cfg.source == ACME.resolve()


@pytest.mark.parametrize("key", ["polices", "byok_key", "source", "Providers"])
def test_unknown_top_level_key_is_rejected(key: str, tmp_path: Path) -> None:
    p = tmp_path / "ledger.yaml"
    p.write_text(ACME_TEXT + f"\n{key}: /tmp/x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert [pr.path for pr in e.value.problems] == [key]
    assert "unknown key" in e.value.problems[0].message


def test_unknown_top_level_key_is_rejected_in_memory_too() -> None:
    import yaml

    data = yaml.safe_load(ACME_TEXT)
    data["source"] = "/etc"
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert [pr.path for pr in e.value.problems] == ["source"]


@pytest.mark.parametrize("key", sorted(SPEC_TOP_LEVEL - {"providers", "models", "api_keys"}))
def test_optional_spec_sections_may_be_omitted(key: str) -> None:
    """Every SPEC section is accepted; all but providers, models, api_keys have defaults."""
    import yaml

    data = yaml.safe_load(ACME_TEXT)
    # drop what references the removed section, so only the key itself is under test
    data.pop(key)
    if key == "members":
        for a in data["api_keys"]:
            a.pop("owner", None)
        data.pop("budgets", None)
    if key == "guardrails":
        for s in ("api_keys", "members"):
            for item in data.get(s, []):
                item.pop("guardrail", None)
    if key == "workloads":
        for a in data["api_keys"]:
            a.pop("default_workload", None)
        data.pop("budgets", None)
    if key == "byok_keys":
        data.pop("budgets", None)
    data = json.loads(json.dumps(data, default=str))  # YAML floats -> strings (money)
    parse_config(data)


# SPEC §4, section by section: the keys SPEC names for each section (extensions may add more).
def _spec_section_keys() -> dict[type, set[str]]:
    from routing_core import config as c

    return {
        c.Paths: {"logs", "invoices", "duckdb", "reports"},
        c.Provider: {"id", "api", "base_url", "invoice_format", "data_collection", "statement_name"},
        c.ModelDef: {"id", "endpoints"},
        c.Endpoint: {"provider", "upstream_model", "price", "zdr", "supports", "context_length"},
        c.Price: {"input", "cached_input", "cache_write", "output", "effective_from"},
        c.SharedCapacity: {"providers", "price_markup_pct"},
        c.Platform: {"byok_fee_pct", "byok_free_allowance_usd", "statement_format"},
        c.ByokKey: {"id", "provider", "secret_env", "tier", "order", "shared_fallback", "filters",
                    "account", "zdr", "disabled"},
        c.KeyFilters: {"models", "api_keys", "members"},
        c.ApiKey: {"id", "secret_sha256", "environment", "app", "owner", "limit", "guardrail"},
        c.Limit: {"usd", "reset", "include_byok"},
        c.Member: {"id", "guardrail"},
        c.Guardrail: {"id", "allowed_models", "ignored_models", "allowed_providers",
                      "ignored_providers", "enforce_zdr", "budget"},
        c.GuardrailBudget: {"usd", "reset"},
        c.Workload: {"id", "data_class", "allowed_models", "allowed_providers", "byok",
                     "shared_fallback", "zdr", "model_fallbacks", "max_attempts", "deadline_s"},
        c.Budget: {"id", "scope", "match", "usd", "period", "thresholds_pct"},
        c.Alerts: {"webhook_url", "min_impact_usd", "baseline_days", "sensitivity"},
    }  # fmt: skip


def test_every_spec_section_key_is_accepted() -> None:
    for model, keys in _spec_section_keys().items():
        missing = keys - set(model.model_fields)
        assert not missing, f"{model.__name__} lacks SPEC keys {sorted(missing)}"


def test_every_config_key_is_documented() -> None:
    """docs/config.md names every key the loader accepts (a new key needs its docs)."""
    from routing_core import config as c

    doc = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    models = [*_spec_section_keys(), c.RouterSettings, c.PipelineSettings, c.PriceChange]
    undocumented = [
        f"{model.__name__}.{name}"
        for model in models
        for name in model.model_fields
        if not re.search(rf"[`.]{re.escape(name)}(`|\[\]`|:)", doc)
    ]
    assert not undocumented, f"not in docs/config.md: {undocumented}"


def test_spec_platform_fee_default_is_5_pct() -> None:
    from routing_core.config import Platform

    assert Platform().byok_fee_pct == Decimal("5")
