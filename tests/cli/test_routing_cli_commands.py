"""`byok-ledger check-config` and `byok-ledger explain`, end to end through the installed
console script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "byok-ledger"
ACME = ROOT / "examples" / "acme" / "ledger.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_check_config_ok() -> None:
    r = run("check-config", str(ACME))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and "OK" in lines[0] and "10 BYOK keys" in lines[0]


def test_check_config_reports_every_problem_with_file_path_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        ACME.read_text()
        .replace("data_collection: allow    # may retain", "data_collection: yes    # may retain")
        .replace(
            "provider: bedrock\n    secret_env: ACME_BEDROCK_PROD_KEY",
            "provider: bedrokc\n    secret_env: ACME_BEDROCK_PROD_KEY",
        )
        .replace("secret_env: ACME_VERTEX_CODING_KEY", "secret_env: sk-proj-abcdefghijklmn")
        .replace("  min_impact_usd:", "  min_impact_usdd:")
    )
    r = run("check-config", str(bad))
    assert r.returncode == 2
    lines = r.stdout.strip().splitlines()
    for line in lines:
        assert line.startswith(f"{bad}: "), line
    text = r.stdout
    assert "providers[4].data_collection: got the boolean true" in text
    assert "byok_keys[8].provider: unknown provider 'bedrokc'" in text
    assert "byok_keys[9].secret_env: this looks like a secret written inline" in text
    assert "alerts.min_impact_usdd: unknown key" in text
    assert len(lines) == 4
    # each problem names its line in the file
    src = bad.read_text().splitlines()
    for line in lines:
        n = int(line.rsplit("(line ", 1)[1].rstrip(")"))
        key = line.split(": ")[1].rsplit(".", 1)[-1].split("[")[0]
        assert key in src[n - 1], (line, src[n - 1])


def test_check_config_missing_file(tmp_path: Path) -> None:
    r = run("check-config", str(tmp_path / "none.yaml"))
    assert r.returncode == 2
    assert "not found" in r.stderr


def test_explain_json_exact_shape() -> None:
    r = run(
        "explain",
        "--config",
        str(ACME),
        "--api-key",
        "public-chat-prod",
        "--model",
        "anthropic/claude-sonnet-4",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"attempts", "excluded", "error"}
    assert out["error"] is None
    assert out["attempts"][0] == {
        "model": "anthropic/claude-sonnet-4",
        "provider": "anthropic",
        "credential": "byok",
        "key_id": "ant-prod-primary",
        "tier": "prioritized",
    }
    for e in out["excluded"]:
        assert set(e) == {"model", "provider", "credential", "key_id", "reason"}
    assert {
        "model": "anthropic/claude-sonnet-4",
        "provider": "bedrock",
        "credential": "shared",
        "key_id": None,
        "reason": "shared_fallback_disabled",
    } in out["excluded"]


def test_explain_nothing_eligible_still_exits_0() -> None:
    r = run(
        "explain",
        "--config",
        str(ACME),
        "--api-key",
        "finance-prod",
        "--model",
        "openai/gpt-4.1",
        "--workload",
        "financial-analysis",
        "--json",
    )
    assert r.returncode == 0
    out = json.loads(r.stdout)
    assert out["attempts"] == []
    assert out["error"]["code"] == 404
    reasons = {(e["model"], e["reason"]) for e in out["excluded"]}
    assert ("openai/gpt-4.1", "model_not_allowed") in reasons


@pytest.mark.parametrize(
    ("flags", "check"),
    [
        (["--zdr"], lambda o: all(a["provider"] in {"bedrock", "vertex"} for a in o["attempts"])),
        (
            ["--provider-only", "anthropic"],
            lambda o: (
                {a["provider"] for a in o["attempts"]} <= {"anthropic", "openai", "vertex"}
                and all(
                    a["provider"] == "anthropic"
                    for a in o["attempts"]
                    if a["model"] == "anthropic/claude-sonnet-4"
                )
            ),
        ),
        (["--no-fallbacks"], lambda o: all(a["credential"] == "byok" for a in o["attempts"])),
        (
            ["--require", "reasoning"],
            lambda o: (
                o["error"]["code"] == 404
                and {e["reason"] for e in o["excluded"] if e["provider"]} >= {"missing_capability"}
            ),
        ),
    ],
)
def test_explain_flags_change_the_plan(flags: list[str], check) -> None:
    r = run(
        "explain",
        "--config",
        str(ACME),
        "--api-key",
        "public-chat-prod",
        "--model",
        "anthropic/claude-sonnet-4",
        "--json",
        *flags,
    )
    assert r.returncode == 0, r.stderr
    assert check(json.loads(r.stdout)), r.stdout


def test_explain_table_and_unknown_api_key() -> None:
    r = run(
        "explain",
        "--config",
        str(ACME),
        "--api-key",
        "coding-agent-dev",
        "--model",
        "openai/gpt-4.1-mini",
        "--member",
        "carol",
    )
    assert r.returncode == 0
    assert "attempts (tried in this order" in r.stdout
    assert "oai-nonprod" in r.stdout and "key_filter_environment" in r.stdout
    r = run("explain", "--config", str(ACME), "--api-key", "ghost", "--model", "x", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["error"]["code"] == 401


def test_explain_with_invalid_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(ACME.read_text().replace("byok: strict", "byok: strictly"))
    r = run("explain", "--config", str(bad), "--api-key", "legal-prod", "--model", "x")
    assert r.returncode == 2
    assert "workloads[4].byok" in r.stdout


def test_explain_data_collection_max_price_and_context_flags() -> None:
    base = [
        "explain",
        "--config",
        str(ACME),
        "--api-key",
        "batch-prod",
        "--json",
        "--model",
        "meta-llama/llama-3.3-70b-instruct",
    ]
    out = json.loads(run(*base).stdout)
    assert out["attempts"][0]["provider"] == "deepinfra"  # cheapest, batch allows it
    out = json.loads(run(*base, "--data-collection", "deny", "--max-price-output", "0.5").stdout)
    reasons = {(e["provider"], e["reason"]) for e in out["excluded"]}
    assert {("deepinfra", "data_collection"), ("vertex", "over_max_price")} <= reasons
    assert out["error"]["code"] == 404
    out = json.loads(run(*base, "--input-tokens", "150000").stdout)
    assert ("deepinfra", "context_too_long") in {
        (e["provider"], e["reason"]) for e in out["excluded"]
    }
    r = run(*base, "--max-price-input", "cheap")
    assert r.returncode != 0 and "not a decimal" in r.stderr
