"""OpenRouter generation records (`/api/v1/generation` JSON) load as request rows."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from pipeline_testkit import Ledger, materialize

GEN_BYOK = {
    "id": "gen-1",
    "upstream_id": "chatcmpl-1",
    "total_cost": 0.0006,
    "cache_discount": None,
    "upstream_inference_cost": 0.012,
    "created_at": "2026-03-02T10:15:00.123456+00:00",
    "model": "openai/gpt-4.1",
    "app_id": 12345,
    "streamed": True,
    "cancelled": False,
    "provider_name": "OpenAI",
    "latency": 1250,
    "moderation_latency": 50,
    "generation_time": 1200,
    "finish_reason": "stop",
    "native_finish_reason": "stop",
    "tokens_prompt": 1000,
    "tokens_completion": 300,
    "native_tokens_prompt": 1000,
    "native_tokens_completion": 300,
    "native_tokens_reasoning": 50,
    "native_tokens_cached": 200,
    "num_media_prompt": None,
    "num_media_completion": None,
    "num_search_results": None,
    "origin": "https://acme.example",
    "usage": 0.0006,
    "is_byok": True,
    "external_user": "carol",
    "api_type": "completions",
}
GEN_SHARED = {
    **GEN_BYOK,
    "id": "gen-2",
    "is_byok": False,
    "provider_name": "Google Vertex",
    "model": "google/gemini-2.5-flash",
    "total_cost": 0.0031,
    "usage": 0.0031,
    "upstream_inference_cost": None,
    "native_tokens_cached": 0,
}


def test_generation_records_map_into_staging_requests(ledger: Ledger):
    folder = ledger.logs / "openrouter_generations" / "dt=2026-03-02"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps({"data": GEN_BYOK}))
    # 1 bad record among 122 stays under max_rejected_pct (1%).
    filler = [{**GEN_SHARED, "id": f"gen-f{i}", "total_cost": 0.0001} for i in range(120)]
    (folder / "b.jsonl").write_text(
        "\n".join(json.dumps(r) for r in [{"data": GEN_SHARED}, {"data": {"model": "x"}}, *filler])
        + "\n"
    )
    result = materialize(ledger, day="2026-03-02")
    assert result.success
    rows = ledger.query(
        "SELECT request_id, ts, provider, upstream_model, credential, input_tokens, "
        "cache_read_tokens, output_tokens, reasoning_tokens, provider_usd, platform_fee_usd, "
        "platform_credits_usd, member_id, log_source FROM staging.requests "
        "WHERE request_id IN ('gen-1', 'gen-2') ORDER BY 1"
    )
    assert rows == [
        (
            "gen-1",
            dt.datetime(2026, 3, 2, 10, 15, 0, 123456),
            "openai",
            "gpt-4.1-2025-04-14",
            "byok",
            800,
            200,
            300,
            50,
            Decimal("0.012"),
            Decimal("0.0006"),
            Decimal("0"),
            "carol",
            "openrouter_generation",
        ),
        (
            "gen-2",
            dt.datetime(2026, 3, 2, 10, 15, 0, 123456),
            "vertex",
            "gemini-2.5-flash",
            "shared",
            1000,
            0,
            300,
            50,
            Decimal("0"),
            Decimal("0"),
            Decimal("0.0031"),
            "carol",
            "openrouter_generation",
        ),
    ]
    assert ledger.query("SELECT source, line, reason, error FROM raw.rejected_records") == [
        ("openrouter_generations", 2, "missing:id", "id: missing or empty (required)")
    ]
    assert ledger.query(
        "SELECT lines, loaded, duplicates, quarantined FROM raw.load_manifest "
        "WHERE source = 'openrouter_generations' ORDER BY file"
    ) == [(1, 1, 0, 0), (122, 121, 0, 1)]
    assert ledger.query("SELECT sum(total_usd) FROM marts.split_billing_daily") == [
        (Decimal("0.0277"),)
    ]  # 0.012 + 0.0006 + 0.0031 + 120 x 0.0001
