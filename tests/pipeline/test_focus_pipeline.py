"""End to end: an organisation-wide FOCUS export dropped next to the real Bedrock and Vertex
invoices changes nothing in the ledger but the load manifest's out-of-scope counts. Every mart
and staging.invoice_lines are identical to a run without it, and split billing still adds up."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from focus_testkit import billed_total, read_rows, toolkit_export, write_rows
from pipeline_testkit import Ledger, acme_day_requests, materialize, outcome


def _acme(root: Path) -> Ledger:
    led = Ledger(root)
    led.write_requests("2026-03-02", acme_day_requests())
    led.write_outcomes(
        "2026-03-02", [outcome("e1", "2026-03-02T10:05:00.000Z", True, request_id="r1")]
    )
    led.add_invoices("acme_2026-03-02")
    return led


def _org_export(tmp: Path, cloud: str, version: str, seed: int) -> tuple[list[str], list[dict]]:
    """The generator's export moved onto Acme's day (2026-03-02, March billing period)."""
    header, rows = read_rows(toolkit_export(tmp, cloud, version, rows=400, seed=seed))
    for r in rows:
        r["ChargePeriodStart"] = "2026-03-02T" + r["ChargePeriodStart"][11:]
        r["ChargePeriodEnd"] = "2026-03-03T00:00:00Z"
        r["BillingPeriodStart"], r["BillingPeriodEnd"] = (
            "2026-03-01T00:00:00Z",
            "2026-04-01T00:00:00Z",
        )
    return header, rows


def _checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _compared(led: Ledger) -> dict[str, list[tuple]]:
    """The marts and staging.invoice_lines, with the ledger's own folder written as <root>."""
    root = str(led.root)

    def rel(v: object) -> object:
        return v.replace(root, "<root>") if isinstance(v, str) else v

    snap = led.snapshot()
    return {
        k: sorted((tuple(rel(v) for v in row) for row in rows), key=repr)
        for k, rows in snap.items()
        if k.startswith("marts.") or k == "staging.invoice_lines"
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    base = _acme(tmp_path_factory.mktemp("base"))
    org = _acme(tmp_path_factory.mktemp("org"))
    gen = tmp_path_factory.mktemp("gen")
    aws_h, aws = _org_export(gen / "aws", "aws", "1.2", seed=5)
    gcp_h, gcp = _org_export(gen / "gcp", "gcp", "1.3", seed=6)
    (org.invoices / "vertex").mkdir(exist_ok=True)
    aws_file = write_rows(org.invoices / "bedrock" / "aws_org_focus_2026-03.csv", aws_h, aws)
    gcp_file = write_rows(org.invoices / "vertex" / "gcp_org_focus_2026-03.csv", gcp_h, gcp)
    expected = {
        str(aws_file): (len(aws), billed_total(aws)),
        str(gcp_file): (len(gcp), billed_total(gcp)),
    }
    return (
        (base, materialize(base, start="2026-03-01", end="2026-03-02")),
        (org, materialize(org, start="2026-03-01", end="2026-03-02")),
        expected,
    )


def test_money_identity_holds_with_an_org_wide_export(runs):
    (_, base_result), (_, org_result), _ = runs
    assert base_result.success and org_result.success
    assert _checks(org_result)["split_billing_adds_up"] is True
    assert _checks(org_result) == _checks(base_result)


def test_no_line_of_the_org_export_reaches_staging_reconciliation_or_unattributed(runs):
    (base, _), (org, _), _ = runs
    got, want = _compared(org), _compared(base)
    assert got.keys() == want.keys()
    assert "staging.invoice_lines" in got and any(k.startswith("marts.reconc") for k in got)
    for table in want:
        assert got[table] == want[table], table
    assert org.query(
        "SELECT count(*) FROM staging.invoice_lines WHERE x_SourceFile LIKE '%org_focus%'"
    ) == [(0,)]


def test_manifest_counts_the_org_export_out_of_scope(runs):
    _, (org, _), expected = runs
    rows = org.query(
        "SELECT file, status, lines, loaded, out_of_scope, out_of_scope_usd FROM raw.load_manifest "
        "WHERE file LIKE '%org_focus%' ORDER BY file"
    )
    got = {f: (status, lines, loaded, oos, usd) for f, status, lines, loaded, oos, usd in rows}
    want = {f: ("loaded", n, 0, n, usd) for f, (n, usd) in expected.items()}
    assert got == want


BEDROCK_FIXTURE = "acme_2026-03-02/bedrock/focus_2026-03.csv"


def _committed_bedrock(led: Ledger) -> None:
    """Acme's Bedrock usage covered by provisioned throughput: billed $0, its amortised cost in
    EffectiveCost, plus the commitment's Purchase line."""
    from focus_testkit import read_rows as read
    from pipeline_testkit import FIXTURES

    header, rows = read(FIXTURES / "invoices" / BEDROCK_FIXTURE)
    header = [*header, "CommitmentDiscountId", "CommitmentDiscountStatus"]
    out = []
    for r in rows:
        r = dict(r, CommitmentDiscountId="", CommitmentDiscountStatus="")
        if r["ChargeCategory"] == "Usage":
            r.update(
                BilledCost="0", CommitmentDiscountId="pt-claude", CommitmentDiscountStatus="Used"
            )
        out.append(r)
    purchase = dict(rows[0], ChargeCategory="Purchase", BilledCost="100", EffectiveCost="0",
                    ListCost="100", SkuMeter="Commitment", ConsumedQuantity="", ConsumedUnit="",
                    CommitmentDiscountId="pt-claude", CommitmentDiscountStatus="",
                    ChargeDescription="Provisioned throughput, 1 model unit")  # fmt: skip
    write_rows(led.invoices / "bedrock" / "focus_2026-03.csv", header, [*out, purchase])


@pytest.fixture(scope="module")
def committed(runs, tmp_path_factory: pytest.TempPathFactory):
    led = _acme(tmp_path_factory.mktemp("committed"))
    _committed_bedrock(led)
    return led, materialize(led, start="2026-03-01", end="2026-03-02")


def test_committed_usage_reconciles_at_effective_cost(runs, committed):
    (base, _), _, _ = runs
    led, result = committed
    assert result.success and _checks(result)["split_billing_adds_up"] is True
    q = (
        "SELECT day, account, upstream_model, expected_usd, billed_usd, variance_usd, status "
        "FROM marts.reconciliation_daily WHERE provider = 'bedrock' ORDER BY ALL"
    )
    got, want = led.query(q), base.query(q)
    assert got == want and any(r[4] for r in got)  # same cells, same billed, same status
    # BilledCost is untouched (the invoice says $0 for that usage); the purchase is non-usage.
    assert led.query(
        "SELECT ChargeCategory, sum(BilledCost), sum(x_UsageCost) FROM staging.invoice_lines "
        "WHERE x_Provider = 'bedrock' GROUP BY 1 ORDER BY 1"
    ) == [
        ("Credit", Decimal("-10"), Decimal("-10")),
        ("Purchase", Decimal("100"), Decimal("100")),
        ("Tax", Decimal("0.07"), Decimal("0.07")),
        ("Usage", Decimal("0"), Decimal("0.95")),
    ]
