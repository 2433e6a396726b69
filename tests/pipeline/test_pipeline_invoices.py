"""Native invoice formats (SPEC §7) against hand-written fixtures whose totals were computed by
hand: parsed to the cent (exactly, as Decimal), attributed to the right UTC day and account."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.sources.invoices import (
    InvoiceError,
    parse_anthropic_cost_report,
    parse_openai_costs,
    parse_openrouter_activity,
    read_invoices,
)
from routing_core.config import load_config

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "invoices"
DAY = FIX / "acme_2026-03-02"
ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "ledger.yaml"


def test_openai_partial_first_bucket_goes_to_its_utc_day_and_amounts_stay_exact():
    rows = list(parse_openai_costs(DAY / "openai" / "costs_page1.json", "openai"))
    assert [(r["day"], r["BilledCost"]) for r in rows] == [
        (dt.date(2026, 3, 1), Decimal("0.42")),  # bucket starts 2026-03-01T12:00Z (partial)
        (dt.date(2026, 3, 2), Decimal("1.5")),
        (dt.date(2026, 3, 2), Decimal("2.6")),
    ]
    assert rows[0]["ChargePeriodStart"] == dt.datetime(2026, 3, 1, 12, 0)
    assert rows[1]["x_UpstreamModel"] == "gpt-4.1-2025-04-14"
    assert [r["x_TokenType"] for r in rows] == ["input", "input", "output"]
    assert rows[1]["x_Account"] == "project_id=proj_acme_prod;api_key_id=key_prod_primary"
    assert rows[2]["x_SourceLocator"] == "data[1].results[1]"
    assert all(r["BillingCurrency"] == "USD" and r["ChargeCategory"] == "Usage" for r in rows)


def test_openai_numbers_never_pass_through_float(tmp_path: Path):
    page = {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": 1772409600,
                "end_time": 1772496000,
                "results": [
                    {
                        "amount": {"value": 0.1, "currency": "usd"},
                        "line_item": "gpt-4.1-2025-04-14, input",
                        "project_id": "p",
                    },
                    {
                        "amount": {"value": 0.2, "currency": "usd"},
                        "line_item": "gpt-4.1-2025-04-14, output",
                        "project_id": "p",
                    },
                    {
                        "amount": {"value": "@BIG@", "currency": "usd"},
                        "line_item": "gpt-4.1-2025-04-14, output",
                        "project_id": "p",
                    },
                ],
            }
        ],
    }
    f = tmp_path / "p.json"
    # The JSON text holds more digits than a float keeps: only a Decimal parse preserves them.
    f.write_text(json.dumps(page).replace('"@BIG@"', "12345678.123456789"))
    rows = list(parse_openai_costs(f, "openai"))
    assert rows[0]["BilledCost"] + rows[1]["BilledCost"] == Decimal("0.3")
    assert rows[2]["BilledCost"] == Decimal("12345678.123456789")


def test_anthropic_amount_is_cents_as_a_decimal_string_and_null_workspace_is_default():
    rows = list(
        parse_anthropic_cost_report(DAY / "anthropic" / "cost_report_2026-03-02.json", "anthropic")
    )
    assert [r["BilledCost"] for r in rows] == [
        Decimal("1.234567"),
        Decimal("0.805"),
        Decimal("0.25"),
    ]
    assert sum(r["BilledCost"] for r in rows) == Decimal("2.289567")
    assert [r["x_WorkspaceId"] for r in rows] == ["wrkspc_acme_prod", "wrkspc_acme_prod", "default"]
    assert [r["x_TokenType"] for r in rows] == ["input", "output", "input"]
    assert rows[2]["x_Account"] == "workspace_id=default"
    assert all(r["day"] == dt.date(2026, 3, 2) for r in rows)


def test_anthropic_amount_as_a_number_is_refused(tmp_path: Path):
    f = tmp_path / "r.json"
    f.write_text(
        '{"data": [{"starting_at": "2026-03-02T00:00:00Z", "results": '
        '[{"amount": 12.5, "currency": "USD", "model": "m"}]}]}'
    )
    with pytest.raises(InvoiceError, match=r"r\.json: data\[0\]\.results\[0\]: amount must be"):
        list(parse_anthropic_cost_report(f, "anthropic"))


def focus_rows(path: Path, provider: str, tmp_path: Path) -> list[dict]:
    """The lines of one FOCUS file, through the loader's own parse (the FOCUS reader)."""
    folder = tmp_path / "inv" / provider
    folder.mkdir(parents=True, exist_ok=True)
    (folder / path.name).write_bytes(path.read_bytes())
    return read_invoices(load_config(ACME), tmp_path / "inv")


def test_focus_null_spellings_timestamps_credit_and_tax(tmp_path: Path):
    rows = focus_rows(DAY / "bedrock" / "focus_2026-03.csv", "bedrock", tmp_path)
    assert [(r["ChargeCategory"], r["BilledCost"]) for r in rows] == [
        ("Usage", Decimal("0.60")),
        ("Usage", Decimal("0.35")),
        ("Credit", Decimal("-10.00")),
        ("Tax", Decimal("0.07")),
    ]
    # "2026-03-02 00:00:00" (no T, no Z) and "2026-03-02T00:00:00Z" are the same instant.
    assert rows[0]["ChargePeriodStart"] == rows[1]["ChargePeriodStart"] == dt.datetime(2026, 3, 2)
    assert rows[0]["ChargeClass"] is None and rows[0]["Tags"] is None  # literal NULL
    assert json.loads(rows[1]["Tags"]) == {"team": "legal"}
    assert rows[0]["x_UpstreamModel"] == "anthropic.claude-sonnet-4-20250514-v1:0"
    assert [r["x_TokenType"] for r in rows[:2]] == ["input", "output"]
    assert rows[0]["x_Account"] == "sub_account_id=412938475610"  # SubAccountId wins
    assert rows[2]["x_UpstreamModel"] is None  # a credit belongs to no model
    assert [r["x_SourceLine"] for r in rows] == [2, 3, 4, 5]


def test_focus_correction_keeps_its_charge_period_not_the_billing_period(tmp_path: Path):
    (row,) = focus_rows(
        FIX / "late_corrections" / "bedrock" / "focus_2026-04_corrections.csv", "bedrock", tmp_path
    )
    assert row["ChargeClass"] == "Correction"
    assert row["day"] == dt.date(2026, 3, 2)  # BillingPeriodStart is 2026-04-01
    assert row["BillingPeriodStart"] == dt.datetime(2026, 4, 1)
    assert row["BilledCost"] == Decimal("-0.05")


def test_focus_non_usd_is_rejected_with_file_and_line(tmp_path: Path):
    f = tmp_path / "eur.csv"
    f.write_text(
        "BilledCost,BillingCurrency,ChargePeriodStart,ChargeCategory,ServiceName\n"
        "1.00,USD,2026-03-02,Usage,Vertex AI\n2.00,EUR,2026-03-02,Usage,Vertex AI\n"
    )
    with pytest.raises(InvoiceError, match=r"eur\.csv: line 3: .*EUR") as e:
        focus_rows(f, "vertex", tmp_path)
    assert (e.value.reason, e.value.line) == ("unknown_currency", 3)


def test_focus_parquet_with_decimal_columns(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "BilledCost": pa.array([Decimal("0.123456789"), Decimal("2")], pa.decimal128(20, 9)),
            "BillingCurrency": ["USD", "USD"],
            "ChargePeriodStart": [dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 2, 0, 0)],
            "ChargeCategory": ["Usage", "Usage"],
            "ServiceName": ["Vertex AI", "Vertex AI"],
            "SubAccountId": ["acme-code-prod", None],
            "BillingAccountId": ["ba-1", "ba-1"],
            "ResourceId": [
                "projects/p/locations/us/publishers/google/models/gemini-2.5-flash",
                "projects/p/models/meta-llama/Llama-3.3-70B-Instruct",
            ],
            "SkuMeter": ["Output Tokens", "Cache Read Input Tokens"],
        }
    )
    pq.write_table(table, tmp_path / "v.parquet")
    rows = focus_rows(tmp_path / "v.parquet", "vertex", tmp_path)
    assert [r["BilledCost"] for r in rows] == [Decimal("0.123456789"), Decimal("2")]
    assert [r["x_UpstreamModel"] for r in rows] == [
        "gemini-2.5-flash",
        "meta-llama/Llama-3.3-70B-Instruct",
    ]
    assert [r["x_Account"] for r in rows] == [
        "sub_account_id=acme-code-prod",
        "billing_account_id=ba-1",
    ]
    assert [r["x_TokenType"] for r in rows] == ["output", "cache_read"]


def test_statement_json_and_csv_agree(tmp_path: Path):
    cfg = load_config(ACME)
    rows = list(parse_openrouter_activity(DAY / "_platform" / "activity_2026-03-02.json", cfg))
    assert sum(r["BilledCost"] for r in rows) == Decimal("0.7375")
    assert rows[4]["x_StatementProvider"] == "bedrock"  # "Amazon Bedrock" via statement_name
    assert rows[6]["x_StatementProvider"] is None  # Mistral is no provider of ours
    assert rows[0]["x_ByokUsageInference"] == Decimal("4.0")
    csv = tmp_path / "s.csv"
    csv.write_text(
        "date,model,provider_name,usage,byok_usage_inference,byok_requests,requests\n"
        "2026-03-02,openai/gpt-4.1,OpenAI,0.2,4.0,2,2\n"
    )
    (row,) = parse_openrouter_activity(csv, cfg)
    assert (row["BilledCost"], row["x_Model"], row["x_StatementProvider"], row["x_Requests"]) == (
        Decimal("0.2"),
        "openai/gpt-4.1",
        "openai",
        2,
    )


def test_every_fixture_day_total_by_hand():
    cfg = load_config(ACME)
    rows = read_invoices(cfg, DAY)
    usage = {}
    for r in rows:
        if r["ChargeCategory"] == "Usage":
            key = (r["day"], r["x_Provider"])
            usage[key] = usage.get(key, Decimal(0)) + r["BilledCost"]
    assert usage == {
        (dt.date(2026, 3, 1), "openai"): Decimal("0.42"),
        (dt.date(2026, 3, 2), "openai"): Decimal("4.67"),
        (dt.date(2026, 3, 2), "anthropic"): Decimal("2.289567"),
        (dt.date(2026, 3, 2), "bedrock"): Decimal("0.95"),
        (dt.date(2026, 3, 2), "_platform"): Decimal("0.7375"),
    }


def test_unknown_files_and_folders_are_invoice_errors(tmp_path: Path):
    cfg = load_config(ACME)
    (tmp_path / "openai").mkdir()
    (tmp_path / "openai" / "notes.txt").write_text("hello")
    with pytest.raises(
        InvoiceError, match=r"notes\.txt: unknown invoice file for provider 'openai'"
    ):
        read_invoices(cfg, tmp_path)
    (tmp_path / "openai" / "notes.txt").unlink()
    (tmp_path / "opneai").mkdir()
    (tmp_path / "opneai" / "costs.json").write_text('{"data": []}')
    with pytest.raises(InvoiceError, match="opneai: folder names no provider"):
        read_invoices(cfg, tmp_path)
    (tmp_path / "opneai" / "costs.json").unlink()
    (tmp_path / "opneai").rmdir()
    (tmp_path / "openai" / "broken.json").write_text('{"object": "page",\n "data": [\n')
    with pytest.raises(InvoiceError, match=r"broken\.json: line 3: invalid JSON"):
        read_invoices(cfg, tmp_path)
