"""Reconciliation status semantics: the tolerance keys (defaults, custom values, bad values
refused), an arrived invoice billing $0 never matched, a refused export marking its cells
`invoice_unreadable` (not missing, not matched), and no export at all `missing_invoice`."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml
from pipeline_testkit import Ledger, materialize, request

from routing_core.config import ConfigError, load_config

DAY = "2026-03-02"
D = Decimal


def _costs_page(usd: str) -> dict:
    return {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": 1772409600,
                "end_time": 1772496000,
                "results": [
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": float(usd), "currency": "usd"},
                        "line_item": "gpt-4.1-2025-04-14, input",
                        "project_id": "proj_acme_prod",
                        "api_key_id": "key_prod_primary",
                        "quantity": 1000,
                    }
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }


def _write_openai(led: Ledger, text: str) -> None:
    path = led.invoices / "openai" / f"costs_{DAY}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _status(led: Ledger) -> list[tuple]:
    return led.query(
        "SELECT provider, expected_usd, billed_usd, variance_usd, status, likely_cause, "
        "tolerance_usd FROM marts.reconciliation_daily ORDER BY provider"
    )


def _set_pipeline(led: Ledger, **values: str) -> None:
    cfg = yaml.safe_load(led.config.read_text())
    cfg.setdefault("pipeline", {}).update(values)
    led.config.write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.mark.parametrize(
    ("billed", "status"),
    [
        ("10.10", "matched"),  # exactly 1 % of $10.00
        ("10.11", "over_billed"),  # 1.1 %
        ("9.89", "under_billed"),
        ("10.00", "matched"),
    ],
)
def test_default_tolerance_is_the_larger_of_one_cent_and_one_percent(ledger, billed, status):
    ledger.write_requests(DAY, [request("r1", f"{DAY}T10:00:00.000Z", provider_usd="10.00")])
    _write_openai(ledger, json.dumps(_costs_page(billed)))
    assert materialize(ledger, day=DAY).success
    [row] = _status(ledger)
    assert row[4] == status
    assert row[3] == D(billed) - D("10.00")  # shown for matched cells too
    assert row[6] == D("0.1")
    assert (row[5] is None) == (status == "matched")


def test_one_cent_floor_on_small_cells(ledger):
    ledger.write_requests(DAY, [request("r1", f"{DAY}T10:00:00.000Z", provider_usd="0.20")])
    _write_openai(ledger, json.dumps(_costs_page("0.21")))  # +5 %, but one cent
    assert materialize(ledger, day=DAY).success
    assert _status(ledger)[0][4] == "matched"


def test_custom_tolerance_is_used(ledger):
    _set_pipeline(ledger, variance_tolerance_pct="5", variance_tolerance_usd="0")
    ledger.write_requests(DAY, [request("r1", f"{DAY}T10:00:00.000Z", provider_usd="10.00")])
    _write_openai(ledger, json.dumps(_costs_page("10.40")))
    assert materialize(ledger, day=DAY).success
    [row] = _status(ledger)
    assert (row[4], row[6]) == ("matched", D("0.5"))


@pytest.mark.parametrize("value", ["-1", "NaN", "Infinity", "abc", "true"])
def test_bad_tolerance_values_are_refused_naming_the_key(ledger, value):
    cfg = yaml.safe_load(ledger.config.read_text())
    cfg["pipeline"]["variance_tolerance_usd"] = value
    ledger.config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError) as e:
        load_config(ledger.config)
    assert "variance_tolerance_usd" in str(e.value)


def test_an_arrived_invoice_billing_nothing_is_never_matched(ledger):
    # Logged cost on the prod key; the arrived page bills only another project.
    ledger.write_requests(DAY, [request("r1", f"{DAY}T10:00:00.000Z", provider_usd="0.30")])
    page = _costs_page("1.00")
    page["data"][0]["results"][0].update(project_id="proj_acme_nonprod", api_key_id="key_nonprod")
    page["data"][0]["results"][0]["line_item"] = "gpt-4.1-mini-2025-04-14, input"
    _write_openai(ledger, json.dumps(page))
    assert materialize(ledger, day=DAY).success
    rows = {r[4]: r for r in _status(ledger)}
    under = rows["under_billed"]
    assert (under[1], under[2], under[3]) == (D("0.30"), D("0"), D("-0.30"))


def test_a_refused_export_marks_its_cells_unreadable(ledger):
    ledger.write_requests(DAY, [request("r1", f"{DAY}T10:00:00.000Z", provider_usd="1.00")])
    _write_openai(ledger, json.dumps(_costs_page("1.00"))[:-40])  # truncated download
    materialize(ledger, day=DAY)  # the ingest checks may flag the file; reconciliation runs
    [row] = _status(ledger)
    assert row[4] == "invoice_unreadable"
    assert (row[2], row[3], row[5]) == (None, None, "invoice_unreadable")
    [(explanation,)] = ledger.query("SELECT explanation FROM marts.reconciliation_daily")
    assert f"costs_{DAY}.json" in explanation and "refused as unreadable" in explanation


def test_no_export_at_all_is_missing_invoice(ledger):
    ledger.write_requests(DAY, [request("r1", f"{DAY}T10:00:00.000Z", provider_usd="1.00")])
    assert materialize(ledger, day=DAY).success
    [row] = _status(ledger)
    assert (row[2], row[4], row[5]) == (None, "missing_invoice", "missing_invoice")


def test_an_absurd_bill_on_a_tiny_estimate_is_reported_not_a_crash(ledger):
    ledger.write_requests(DAY, [request("r1", f"{DAY}T10:00:00.000Z", provider_usd="0.000000001")])
    _write_openai(ledger, json.dumps(_costs_page("1000000")))
    assert materialize(ledger, day=DAY).success
    [(status, variance, pct, cause, factor)] = ledger.query(
        "SELECT status, variance_usd, variance_pct, likely_cause, implied_factor "
        "FROM marts.reconciliation_daily"
    )
    assert (status, cause) == ("over_billed", "unknown")
    assert variance == D("999999.999999999")
    assert pct is None and factor is None  # too large for their columns: shown as none


def test_focus_export_billing_another_sub_account_is_an_account_mismatch(ledger):
    """A FOCUS export covers the accounts it lists: the key's sub-account is absent (so its
    logs have no invoice) while an account no key claims is billed: the identifiers are
    suggested for the key."""
    ledger.write_requests(
        DAY,
        [
            request(
                f"b{i}",
                f"{DAY}T10:0{i}:00.000Z",
                api_key_id="assistant-prod",
                model="anthropic/claude-sonnet-4",
                provider="bedrock",
                upstream_model="anthropic.claude-sonnet-4-20250514-v1:0",
                key_id="bedrock-prod",
                provider_usd="0.25",
                zdr=True,
            )
            for i in range(4)
        ],
    )
    folder = ledger.invoices / "bedrock"
    folder.mkdir(parents=True)
    (folder / "focus_2026-03.csv").write_text(
        "BillingAccountId,SubAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,"
        "ChargePeriodEnd,ChargeCategory,ChargeClass,ChargeDescription,BilledCost,EffectiveCost,"
        "ListCost,BillingCurrency,ProviderName,ServiceName,ServiceCategory,ResourceId,SkuMeter,"
        "ConsumedQuantity,ConsumedUnit,Tags\n"
        "998877665544,555566667777,2026-03-01T00:00:00Z,2026-04-01T00:00:00Z,"
        f"{DAY}T00:00:00Z,2026-03-03T00:00:00Z,Usage,NULL,Claude Sonnet 4 input,1.00,1.00,1.00,"
        "USD,AWS,Amazon Bedrock,AI and Machine Learning,"
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0,"
        "Input Tokens,1000,Tokens,NULL\n",
        encoding="utf-8",
    )
    assert materialize(ledger, day=DAY).success
    rows = ledger.query(
        "SELECT status, likely_cause, suggested_account, explanation "
        "FROM marts.reconciliation_daily WHERE provider = 'bedrock' ORDER BY status"
    )
    by_status = {r[0]: r for r in rows}
    assert set(by_status) == {"missing_invoice", "unlogged_usage"}, rows
    for status, cause, suggested, why in rows:
        assert cause == "account_mismatch", (status, why)
        assert "sub_account_id=555566667777" in suggested
        assert "byok_keys[].account of bedrock-prod" in why
