"""marts.policy_violations: each kind of policy breach is found and explains itself; clean
traffic gives no row; the (non-blocking) check reports them."""

from __future__ import annotations

import json
from decimal import Decimal

from pipeline_testkit import SONNET_ON_ANTHROPIC, Ledger, materialize, request

T = "2026-03-02T10:00:00.000Z"


def test_each_violation_kind_is_found_and_explained(ledger: Ledger):
    ledger.write_requests(
        "2026-03-02",
        [
            request("ok-1", T),  # clean
            request(
                "p1",
                T,
                api_key_id="legal-prod",
                **SONNET_ON_ANTHROPIC,
                credential="shared",
                key_id=None,
                credits="0.2",
                zdr=False,
            ),
            request(
                "p2",
                T,
                **SONNET_ON_ANTHROPIC,
                key_id="ant-legal-zdr",
                provider_usd="0.5",
                zdr=True,
            ),
            request("p3", T, key_id="oai-nonprod", provider_usd="0.1"),
            request("p4", T, provider_usd="0.1", environment="dev"),
        ],
    )
    result = materialize(ledger, day="2026-03-02")
    assert result.success  # an audit finding does not stop the ledger
    rows = ledger.query(
        "SELECT request_id, violation, explanation FROM marts.policy_violations ORDER BY 1, 2"
    )
    kinds = [(r, v) for r, v, _ in rows]
    assert kinds == [
        ("p1", "strict_byok_used_shared"),
        ("p1", "zdr_required_non_zdr"),
        ("p2", "key_outside_filters"),
        ("p3", "environment_crossing"),
        ("p4", "environment_crossing"),
    ]
    why = {(r, v): e for r, v, e in rows}
    assert "served by shared capacity on anthropic" in why[("p1", "strict_byok_used_shared")]
    assert (
        "API key public-chat-prod not in legal-prod,finance-prod"
        in why[("p2", "key_outside_filters")]
    )
    assert "environments staging,dev but served prod" in why[("p3", "environment_crossing")]
    assert "belongs to prod but the request ran as dev" in why[("p4", "environment_crossing")]
    check = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "no_policy_violations"
    )
    assert check.passed is False
    assert check.metadata["violations"].value == 5


def test_a_shared_attempt_under_strict_byok_is_a_violation_even_if_byok_served(ledger: Ledger):
    attempts = [
        {
            "model": "anthropic/claude-sonnet-4",
            "provider": "anthropic",
            "credential": "shared",
            "key_id": None,
            "status": "error",
            "http_status": 502,
            "error_type": "upstream",
            "latency_ms": 30.0,
        },
        {
            "model": "anthropic/claude-sonnet-4",
            "provider": "anthropic",
            "credential": "byok",
            "key_id": "ant-legal-zdr",
            "status": "ok",
            "http_status": 200,
            "error_type": None,
            "latency_ms": 90.0,
        },
    ]
    ledger.write_requests(
        "2026-03-02",
        [
            request(
                "s1",
                T,
                api_key_id="legal-prod",
                **SONNET_ON_ANTHROPIC,
                key_id="ant-legal-zdr",
                zdr=True,
                attempts=attempts,
            )
        ],
    )
    materialize(ledger, day="2026-03-02")
    assert ledger.query("SELECT violation, explanation FROM marts.policy_violations") == [
        (
            "strict_byok_used_shared",
            "workload legal-review is strict BYOK but an attempt went to shared capacity",
        )
    ]
    assert json.dumps(
        ledger.query(
            "SELECT key_id, errors, served FROM marts.routing_health ORDER BY key_id NULLS FIRST"
        )
    ) == ('[[null, 1, 0], ["ant-legal-zdr", 0, 1]]')


def test_routing_health_counts_a_request_once_per_route(ledger: Ledger):
    def att(key, status, http):
        return {
            "model": "openai/gpt-4.1",
            "provider": "openai",
            "credential": "byok",
            "key_id": key,
            "status": status,
            "http_status": http,
            "error_type": None,
            "latency_ms": 10.0,
        }

    # Retried the same key after a 429 (Retry-After), then fell over to the backup key.
    attempts = [
        att("oai-prod-primary", "rate_limited", 429),
        att("oai-prod-primary", "rate_limited", 429),
        att("oai-prod-backup", "ok", 200),
    ]
    ledger.write_requests(
        "2026-03-02",
        [
            request(
                "h1",
                T,
                key_id="oai-prod-backup",
                attempts=attempts,
                fallback_used=True,
                provider_usd="0.2",
            ),
            request("h2", T, provider_usd="0.1"),
        ],
    )
    materialize(ledger, day="2026-03-02")
    rows = ledger.query(
        "SELECT key_id, requests, attempts, served, rate_limit_hits, fallback_served, "
        "rate_limit_rate, fallback_rate FROM marts.routing_health ORDER BY key_id"
    )
    assert rows == [
        ("oai-prod-backup", 1, 1, 1, 0, 1, Decimal("0"), Decimal("1")),
        ("oai-prod-primary", 2, 3, 1, 2, 0, Decimal("0.666667"), Decimal("0")),
    ]
