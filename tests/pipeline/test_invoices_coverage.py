"""staging.invoice_coverage: which provider x account x UTC day an invoice export arrived for
(even at $0) or was unreadable for — what reconciliation's missing_invoice and
invoice_unreadable read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
from pipeline_testkit import Ledger
from test_invoices_hostile import MAR_2, bucket, dumps, load, oai_page

from pipeline.loads import DayRange

MARCH = DayRange(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
FOCUS_HEAD = (
    "BillingAccountId,SubAccountId,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,"
    "ChargeClass,BilledCost,EffectiveCost,BillingCurrency,ProviderName,ServiceName,"
    "ServiceCategory,ResourceId,SkuMeter\n"
)
MODEL = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0"


def focus_row(day: str, sub: str, cost: str, category: str = "Usage", cls: str = "") -> str:
    nxt = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    return (
        f"998877665544,{sub},{day}T00:00:00Z,{nxt}T00:00:00Z,{category},{cls},{cost},{cost},"
        f"USD,AWS,Amazon Bedrock,AI and Machine Learning,{MODEL},Input Tokens\n"
    )


def coverage(led: Ledger) -> list[tuple]:
    return led.query(
        "SELECT CAST(day AS VARCHAR), provider, account, status, "
        "regexp_extract(file, '[^/]+$') FROM staging.invoice_coverage ORDER BY ALL"
    )


def test_api_pages_cover_the_whole_organisation_even_for_an_empty_bucket(ledger: Ledger):
    (ledger.invoices / "openai").mkdir()
    page = oai_page(bucket(), bucket(MAR_2 + 86400, MAR_2 + 2 * 86400, results=[]))
    (ledger.invoices / "openai" / "c.json").write_text(dumps(page))
    load(ledger, MARCH)
    assert coverage(ledger) == [
        ("2026-03-02", "openai", None, "arrived", "c.json"),
        ("2026-03-03", "openai", None, "arrived", "c.json"),  # arrived, billing $0
    ]


def test_a_focus_export_covers_its_accounts_over_its_span_and_corrections_their_day(
    ledger: Ledger,
):
    (ledger.invoices / "bedrock").mkdir()
    (ledger.invoices / "bedrock" / "focus_2026-03.csv").write_text(
        FOCUS_HEAD
        + focus_row("2026-03-02", "412938475610", "0.60")
        + focus_row("2026-03-04", "555500001111", "0.10")
        + focus_row("2026-03-04", "", "-1.00", "Credit")  # the billing account only
    )
    (ledger.invoices / "bedrock" / "focus_2026-04_corrections.csv").write_text(
        FOCUS_HEAD + focus_row("2026-03-10", "412938475610", "-0.05", cls="Correction")
    )
    load(ledger, MARCH)
    rows = coverage(ledger)
    monthly = [r for r in rows if r[4] == "focus_2026-03.csv"]
    assert {(d, a) for d, _p, a, _s, _f in monthly} == {
        (d, s)
        for d in ("2026-03-02", "2026-03-03", "2026-03-04")
        for s in (
            "sub_account_id=412938475610",
            "sub_account_id=555500001111",
            "billing_account_id=998877665544",
        )
    }
    assert [r for r in rows if r[4] != "focus_2026-03.csv"] == [
        (
            "2026-03-10",
            "bedrock",
            "sub_account_id=412938475610",
            "arrived",
            "focus_2026-04_corrections.csv",
        )
    ]


def test_a_refused_page_beside_a_good_one_leaves_both_rows_for_the_day(ledger: Ledger):
    (ledger.invoices / "openai").mkdir()
    (ledger.invoices / "openai" / "a.json").write_text(dumps(oai_page(bucket())))
    (ledger.invoices / "openai" / "b.json").write_text(dumps(oai_page(bucket()))[:100])
    load(ledger, MARCH)
    assert coverage(ledger) == [
        ("2026-03-02", "openai", None, "arrived", "a.json"),
        ("2026-03-02", "openai", None, "unreadable", "b.json"),
    ]


def test_the_statement_covers_the_platform_for_the_days_it_lists(ledger: Ledger):
    (ledger.invoices / "_platform").mkdir()
    (ledger.invoices / "_platform" / "s.csv").write_text(
        "date,model,provider_name,usage\n2026-03-02,m,OpenAI,0.1\n2026-03-05,m,OpenAI,0.2\n"
    )
    load(ledger, MARCH)
    assert coverage(ledger) == [
        ("2026-03-02", "_platform", None, "arrived", "s.csv"),
        ("2026-03-05", "_platform", None, "arrived", "s.csv"),
    ]


def test_the_blocking_identity_check_fails_when_a_kept_line_goes_missing(acme_day: Ledger):
    from pipeline_testkit import materialize

    assert materialize(acme_day, day="2026-03-02").success
    page = acme_day.invoices / "openai" / "costs_page2.json"
    with duckdb.connect(str(acme_day.duckdb)) as conn:  # lose one persisted line behind its back
        conn.execute(
            "DELETE FROM raw.invoice_lines WHERE x_SourceFile = ? AND x_SourceLine = 1",
            [str(page)],
        )
    result = materialize(acme_day, day="2026-03-02")
    (check,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "invoice_lines_accounted_for"
    ]
    assert not check.passed
    assert f"`{page}`: lines 2 vs loaded 2" in check.metadata["examples"].value
    assert not result.success  # blocking: the marts are not rebuilt on top of it


def test_a_crlf_statement_with_a_quoted_newline_and_no_final_newline_loads(ledger: Ledger):
    (ledger.invoices / "_platform").mkdir()
    (ledger.invoices / "_platform" / "s.csv").write_bytes(
        b"date,model,provider_name,usage\r\n"
        b'2026-03-02,"model\r\nwith a break",OpenAI,0.1\r\n'
        b"2026-03-03,m,OpenAI,0.2"  # complete last row without its newline: accepted
    )
    stats = load(ledger, MARCH)
    assert (stats["refused"], stats["rows"]) == (0, 2)
    assert ledger.query(
        "SELECT x_SourceLine, x_Model, BilledCost FROM staging.invoice_lines ORDER BY 1"
    ) == [(2, "model\r\nwith a break", Decimal("0.1")), (4, "m", Decimal("0.2"))]
