"""FOCUS rows from hand-written marts whose answers are known: a correction shared exactly
over the rows of its invoice cell, an estimated (not yet invoiced) row, unattributed cost,
shared capacity, tax, and a row of another month that must stay out."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import duckdb
import pyarrow.parquet as pq
import pytest
from martkit import create_marts, ledger_data, write_config

from pipeline.export import export_month

D = dt.date
ACCT = "project_id=proj_a"


def _split(day, billed, estimated, *, api="chat-prod", env="prod", app="chat", credential="byok",
           key="oai", fee="0", credits="0", status="invoiced", attribution="logged",
           requests=10, model="openai/gpt-4.1"):  # fmt: skip
    billed = None if billed is None else Decimal(billed)
    est = Decimal(estimated)
    fee, credits = Decimal(fee), Decimal(credits)
    total = (billed if billed is not None else est) + fee + credits
    return {
        "day": day, "environment": env, "app": app, "api_key_id": api, "workload": "chat",
        "member_id": None, "provider": "openai", "model": model, "credential": credential,
        "requests": requests, "provider_billed_usd": billed, "provider_estimated_usd": est,
        "platform_fee_usd": fee, "platform_credits_usd": credits, "total_usd": total,
        "status": status, "key_id": key if credential == "byok" else None,
        "upstream_model": "gpt-4.1", "account": ACCT if credential == "byok" else None,
        "provider_adjustment_usd": None if billed is None else billed - est,
        "platform_fee_estimated_usd": fee, "platform_credits_estimated_usd": credits,
        "list_usd": est, "attribution": attribution,
    }  # fmt: skip


@pytest.fixture
def cfg(tmp_path):
    cfg = write_config(
        tmp_path,
        ledger_data(["openai"], {"oai": "openai"}, {"chat-prod": ("prod", "chat")}),
    )
    rows = [
        _split(D(2026, 11, 3), "1.000000001", "1.1"),
        _split(D(2026, 11, 3), "2", "2", api="chat-prod", requests=20),
        _split(D(2026, 11, 3), "3", "2.9", requests=30, fee="0.15"),
        _split(
            D(2026, 11, 3),
            "0.7",
            "0",
            env="(unattributed)",
            app="(unattributed)",
            api=None,
            attribution="unattributed",
            requests=0,
        ),  # fmt: skip
        _split(D(2026, 11, 4), None, "0.5", status="estimated"),
        _split(D(2026, 11, 4), "0", "0", credential="shared", credits="0.25", requests=4),
        _split(D(2026, 11, 6), "0", "0.2", api="chat-prod", requests=2),  # logged, billed $0
        _split(D(2026, 12, 1), "9", "9"),  # another month
    ]
    with duckdb.connect(str(cfg.duckdb_path)) as c:
        create_marts(c)
        for r in rows:
            cols = ", ".join(r)
            c.execute(
                f"INSERT INTO marts.split_billing_daily ({cols}) VALUES ({', '.join('?' * len(r))})",
                list(r.values()),
            )
        # The provider's late correction for Nov 3, invoiced in December's billing period.
        c.execute(
            "INSERT INTO staging.invoice_lines (day, BilledCost, BillingCurrency, "
            "ChargePeriodStart, ChargeCategory, ChargeClass, BillingPeriodStart, BillingPeriodEnd, "
            "x_Provider, x_Account, x_UpstreamModel, x_SourceFile, x_SourceLine) VALUES "
            "('2026-11-03', -1.000000000, 'USD', '2026-11-03', 'Usage', 'Correction', "
            "'2026-12-01', '2027-01-01', 'openai', ?, 'gpt-4.1', 'dec.csv', 7)",
            [ACCT],
        )
        c.execute(
            "INSERT INTO marts.non_usage_charges VALUES ('2026-11-05', 'openai', ?, 'Tax', NULL, "
            "'Sales tax', 0.100000000, 'USD', 'nov.csv', 3)",
            [ACCT],
        )
    return cfg


def test_rows_of_each_layer(cfg, tmp_path):
    out = tmp_path / "nov.parquet"
    result = export_month(cfg, "2026-11", "focus", out)
    rows = pq.read_table(out).to_pylist()
    # 6.700000001 provider + 0.5 estimated + 0.15 fee + 0.25 credits + 0.10 tax
    assert result.billed_cost_usd == Decimal("7.700000001")
    assert sum(r["BilledCost"] for r in rows) == Decimal("7.700000001")
    assert all(r["x_Day"] < D(2026, 12, 1) for r in rows)

    nov3 = [r for r in rows if r["x_Day"] == D(2026, 11, 3) and r["x_Provider"] == "openai"]
    corr = [r for r in nov3 if r["ChargeClass"] == "Correction"]
    usage = [r for r in nov3 if r["x_BillingLayer"] == "provider_usage"]
    # The -$1 correction is shared over the cell's four rows in proportion to their billed
    # cost, exactly: shares sum to -1 and each row's usage + share is its allocation.
    assert sum(r["BilledCost"] for r in corr) == Decimal("-1")
    assert len(corr) == 4 and all(r["BilledCost"] < 0 for r in corr)
    assert sum(r["BilledCost"] for r in usage + corr) == Decimal("6.700000001")
    assert all(r["PricingQuantity"] is None and r["PricingUnit"] is None for r in corr)
    assert {r["BillingPeriodStart"].date() for r in corr} == {D(2026, 12, 1)}
    assert {r["BillingPeriodStart"].date() for r in usage} == {D(2026, 11, 1)}
    assert {r["BillingPeriodEnd"].date() for r in usage} == {D(2026, 12, 1)}  # exclusive end

    est = [r for r in rows if r["x_LedgerStatus"] == "estimated"]
    assert [(r["BilledCost"], r["x_BillingLayer"]) for r in est] == [
        (Decimal("0.5"), "provider_usage")
    ]

    unattributed = [
        r for r in rows if r["x_Attribution"] == "unattributed" and r["ChargeClass"] is None
    ]
    assert len(unattributed) == 1
    assert json.loads(unattributed[0]["Tags"]) == {
        "environment": "(unattributed)",
        "app": "(unattributed)",
        "workload": "chat",
    }

    [fee] = [r for r in rows if r["x_BillingLayer"] == "platform_fee"]
    assert fee["BilledCost"] == Decimal("0.15") and fee["InvoiceIssuerName"] == "OpenRouter"
    assert fee["ServiceSubcategory"] == "AI Platforms"
    [shared] = [r for r in rows if r["x_BillingLayer"] == "platform_credits"]
    assert shared["ProviderName"] == shared["InvoiceIssuerName"] == "OpenRouter"
    assert shared["SubAccountId"] is None and shared["x_Credential"] == "shared"

    [tax] = [r for r in rows if r["ChargeCategory"] == "Tax"]
    assert tax["BilledCost"] == Decimal("0.1") and tax["PricingQuantity"] is None
    assert tax["ChargeFrequency"] == "One-Time" and tax["x_SourceFile"] == "nov.csv"
    assert tax["x_SourceLine"] == 3

    logged = [r for r in rows if r["x_Attribution"] == "logged"]
    assert all(json.loads(r["Tags"])["api_key"] == "chat-prod" for r in logged)
    assert all(r["BillingAccountId"] == ACCT for r in usage)


def test_another_time_zone_changes_nothing(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    export_month(cfg, "2026-11", "focus", tmp_path / "a.csv")
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    export_month(cfg, "2026-11", "focus", tmp_path / "b.csv")
    a = (tmp_path / "a.csv").read_text()
    assert a == (tmp_path / "b.csv").read_text()
    assert '"2026-11-03T00:00:00Z"' in a and "T00:00:00Z" in a.splitlines()[1]
    # The $0 BYOK row: exact decimal text (quoted like every text field; CSV readers such as
    # DuckDB, polars and pyarrow read it back as a number), not Arrow's 0E-9.
    assert '"0.000000000"' in a and "E-9" not in a
