"""The hand-written FOCUS fixtures (tests/fixtures/invoices/) through the FOCUS reader the
invoice loader uses: totals to the cent, UTC days, accounts, models and token types."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb

from pipeline.sources.focus import parse_focus_file

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "invoices"
KNOWN = {"anthropic.claude-sonnet-4-20250514-v1:0", "gemini-2.5-flash"}


def _rows(path: Path, provider: str = "bedrock") -> list[dict]:
    conn = duckdb.connect()
    parse_focus_file(conn, path, provider, None, KNOWN, "_t")
    cur = conn.execute("SELECT * FROM _t ORDER BY x_SourceLine")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_bedrock_fixture_null_spellings_timestamps_credit_and_tax():
    rows = _rows(FIX / "acme_2026-03-02" / "bedrock" / "focus_2026-03.csv")
    assert [(r["ChargeCategory"], r["BilledCost"]) for r in rows] == [
        ("Usage", Decimal("0.60")),
        ("Usage", Decimal("0.35")),
        ("Credit", Decimal("-10.00")),
        ("Tax", Decimal("0.07")),
    ]
    # "2026-03-02 00:00:00" (no T, no Z) and "2026-03-02T00:00:00Z" are the same instant.
    assert rows[0]["ChargePeriodStart"] == rows[1]["ChargePeriodStart"] == dt.datetime(2026, 3, 2)
    assert rows[0]["ChargeClass"] is None and rows[0]["Tags"] is None  # literal NULL
    assert rows[1]["Tags"] == '{"team":"legal"}'
    assert rows[0]["x_UpstreamModel"] == "anthropic.claude-sonnet-4-20250514-v1:0"
    assert [r["x_TokenType"] for r in rows[:2]] == ["input", "output"]
    assert rows[0]["x_Account"] == "sub_account_id=412938475610"  # SubAccountId wins
    assert rows[2]["x_UpstreamModel"] is None  # a credit belongs to no model
    assert [r["x_SourceLine"] for r in rows] == [2, 3, 4, 5]
    assert {r["day"] for r in rows} == {dt.date(2026, 3, 2)}


def test_correction_keeps_its_charge_period_not_the_billing_period():
    (row,) = _rows(FIX / "late_corrections" / "bedrock" / "focus_2026-04_corrections.csv")
    assert row["ChargeClass"] == "Correction"
    assert row["day"] == dt.date(2026, 3, 2)  # BillingPeriodStart is 2026-04-01
    assert row["BillingPeriodStart"] == dt.datetime(2026, 4, 1)
    assert row["BilledCost"] == Decimal("-0.05")
