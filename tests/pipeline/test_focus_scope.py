"""Organisation-wide FOCUS exports: only the provider's LLM lines reach the ledger, exactly, and
every other line is counted out of scope (lines and dollars). The exports come from the
third-party `focus-data-toolkit` generator (AWS, Azure, GCP; FOCUS 1.2 and 1.3), with LLM lines
injected; the expected totals are computed here from the file's own text."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from focus_testkit import LLM_SERVICE, billed_total, llm_row, nano, read_rows, toolkit_export
from focus_testkit import write_rows as write

from pipeline.sources.focus import FocusScope, parse_focus_file
from routing_core.config import ConfigError, load_config

ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "ledger.yaml"
KNOWN = {svc["model"] for svc in LLM_SERVICE.values()}


def _load(path: Path, scope=None, provider: str = "p"):
    conn = duckdb.connect()
    cfg = SimpleNamespace(focus_scope=scope) if scope is not None else None
    res = parse_focus_file(conn, path, provider, cfg, KNOWN, "_focus_target")
    cur = conn.execute("SELECT * FROM _focus_target ORDER BY x_SourceLine")
    names = [d[0] for d in cur.description]
    return res, [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _injected(template: dict[str, str], cloud: str) -> list[dict]:
    """Usage, a correction, the service's own tax and a credit, and two lines that look like AI
    but are not LLM spend (a SageMaker-style ML service, an org-wide tax line)."""
    return [
        llm_row(template, cloud),
        llm_row(template, cloud, BilledCost="2.5", EffectiveCost="2.5", SkuMeter="Output Tokens"),
        llm_row(
            template,
            cloud,
            ChargeClass="Correction",
            BilledCost="-0.000000007",
            EffectiveCost="-0.000000007",
            ChargePeriodStart="2026-05-01 00:00:00",
            ChargePeriodEnd="2026-05-02 00:00:00",
        ),
        llm_row(template, cloud, ChargeCategory="Tax", BilledCost="0.26", SkuMeter="", Tags=""),
        llm_row(template, cloud, ChargeCategory="Credit", BilledCost="-1.000000001", SkuMeter=""),
    ]


def _lookalikes(template: dict[str, str], cloud: str) -> list[dict]:
    return [
        llm_row(
            template,
            cloud,
            ServiceName="Amazon SageMaker",
            ServiceSubcategory="Machine Learning",
            BilledCost="7.77",
        ),
        llm_row(
            template,
            cloud,
            ServiceName="",
            ServiceCategory="",
            ServiceSubcategory="",
            ChargeCategory="Tax",
            BilledCost="13.000000004",
        ),
    ]


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_only_the_injected_llm_lines_reach_the_ledger(tmp_path: Path, cloud: str, version: str):
    gen = toolkit_export(tmp_path / "gen", cloud, version)
    header, generated = read_rows(gen)
    assert len(generated) == 300
    template = generated[0]
    llm = _injected(template, cloud)
    other = _lookalikes(template, cloud)
    # Interleave: the LLM lines sit among the organisation's other lines.
    rows = generated[:100] + llm[:2] + other[:1] + generated[100:200] + llm[2:] + other[1:]
    rows += generated[200:]
    path = write(tmp_path / f"focus_{cloud}_{version}.csv", header, rows)

    res, loaded = _load(path)

    assert (res.lines, res.loaded) == (len(rows), len(llm))
    assert res.out_of_scope == len(generated) + len(other)
    assert res.out_of_scope_usd == billed_total(generated) + nano("7.77") + nano("13.000000004")
    assert [r["x_SourceLine"] for r in loaded] == [102, 103, 205, 206, 207]
    assert sum(r["BilledCost"] for r in loaded) == Decimal("1.883456781")
    assert [r["ChargeCategory"] for r in loaded] == ["Usage", "Usage", "Usage", "Tax", "Credit"]
    assert [r["ChargeClass"] for r in loaded] == [None, None, "Correction", None, None]
    assert {r["ServiceName"] for r in loaded} == {LLM_SERVICE[cloud]["ServiceName"]}
    model = LLM_SERVICE[cloud]["model"]
    assert [r["x_UpstreamModel"] for r in loaded] == [model, model, model, None, None]
    assert [r["x_TokenType"] for r in loaded] == ["input", "output", "input", None, None]
    # The correction is booked on its own charge day, not the billing period's.
    assert [r["day"] for r in loaded] == [dt.date(2026, 5, 2)] * 2 + [dt.date(2026, 5, 1)] + [
        dt.date(2026, 5, 2)
    ] * 2
    assert (res.first_day, res.last_day) == (dt.date(2026, 5, 1), dt.date(2026, 5, 2))
    sub = template["SubAccountId"]
    assert {r["x_Account"] for r in loaded} == {f"sub_account_id={sub}"}
    assert all(r["x_UsageCost"] == r["BilledCost"] for r in loaded)


def test_generated_export_alone_has_nothing_in_scope(tmp_path: Path):
    gen = toolkit_export(tmp_path / "gen", "aws", "1.3", rows=500, seed=3)
    _, generated = read_rows(gen)
    res, loaded = _load(gen)
    assert (res.lines, res.loaded, res.out_of_scope) == (500, 0, 500)
    assert res.out_of_scope_usd == billed_total(generated) > 0
    assert loaded == []
    assert (res.first_day, res.last_day) == (None, None)


def _as_1_3_twin(header: list[str], rows: list[dict]) -> tuple[list[str], list[dict]]:
    """The FOCUS 1.3 spelling of a 1.2 file: ProviderName/PublisherName renamed, allocation and
    contract columns added (empty), columns in another order."""
    rename = {"ProviderName": "ServiceProviderName", "PublisherName": "HostProviderName"}
    extra = ["ContractApplied", "AllocatedMethodId", "AllocatedMethodDetails", "AllocatedTags"]
    new_header = list(reversed([rename.get(c, c) for c in header])) + extra
    new_rows = [{rename.get(k, k): v for k, v in r.items()} for r in rows]
    return new_header, new_rows


def test_a_1_3_file_with_the_renamed_columns_loads_like_its_1_2_twin(tmp_path: Path):
    gen = toolkit_export(tmp_path / "gen", "aws", "1.2")
    header, generated = read_rows(gen)
    assert "ProviderName" in header and "ServiceProviderName" not in header
    rows = generated + _injected(generated[0], "aws")
    v12 = write(tmp_path / "v12.csv", header, rows)
    h13, rows13 = _as_1_3_twin(header, rows)
    assert "ProviderName" not in h13 and "ServiceProviderName" in h13
    v13 = write(tmp_path / "v13.csv", h13, rows13)

    res12, lines12 = _load(v12)
    res13, lines13 = _load(v13)

    strip = [{k: v for k, v in r.items() if k != "x_SourceFile"} for r in lines12]
    assert strip == [{k: v for k, v in r.items() if k != "x_SourceFile"} for r in lines13]
    assert len(strip) == 5 and {r["ProviderName"] for r in strip} == {"AWS"}
    assert (res12.lines, res12.loaded, res12.out_of_scope, res12.out_of_scope_usd) == (
        res13.lines,
        res13.loaded,
        res13.out_of_scope,
        res13.out_of_scope_usd,
    )
    assert "ProviderName" in res13.columns


def test_ai_commitments_purchase_is_not_usage_and_committed_usage_reconciles_at_effective_cost(
    tmp_path: Path,
):
    gen = toolkit_export(tmp_path / "gen", "aws", "1.3")
    header, generated = read_rows(gen)
    t = generated[0]
    pt = "arn:aws:bedrock:us-east-1:200000000011:provisioned-model/pt-claude-1"
    rows = [
        # Bedrock provisioned throughput bought for the month: a Purchase (non-usage charge).
        llm_row(
            t,
            "aws",
            ChargeCategory="Purchase",
            BilledCost="720",
            EffectiveCost="0",
            SkuMeter="Commitment",
            ResourceId=pt,
            CommitmentDiscountId=pt,
            ChargeFrequency="Recurring",
        ),  # fmt: skip
        # Usage it covers: billed $0, its amortised cost in EffectiveCost.
        llm_row(
            t,
            "aws",
            BilledCost="0",
            EffectiveCost="1.000000001",
            CommitmentDiscountId=pt,
            CommitmentDiscountStatus="Used",
        ),  # fmt: skip
        llm_row(
            t,
            "aws",
            BilledCost="0.000",
            EffectiveCost="0.5",
            CommitmentDiscountId=pt,
            CommitmentDiscountStatus="",
        ),  # fmt: skip
        # Hours the commitment was not used: waste, not usage.
        llm_row(
            t,
            "aws",
            BilledCost="0",
            EffectiveCost="0.25",
            CommitmentDiscountId=pt,
            CommitmentDiscountStatus="Unused",
            SkuMeter="",
        ),  # fmt: skip
        # On-demand usage beside it, and $0 usage with no commitment.
        llm_row(t, "aws", BilledCost="0.3", EffectiveCost="0.3"),
        llm_row(t, "aws", BilledCost="0", EffectiveCost="0.4"),
    ]
    res, loaded = _load(write(tmp_path / "pt.csv", header, rows))
    assert res.loaded == 6
    got = [(r["ChargeCategory"], r["BilledCost"], r["x_UsageCost"]) for r in loaded]
    d = Decimal
    assert got == [
        ("Purchase", d("720"), d("720")),
        ("Usage", d("0"), d("1.000000001")),
        ("Usage", d("0"), d("0.5")),
        ("Usage", d("0"), d("0")),
        ("Usage", d("0.3"), d("0.3")),
        ("Usage", d("0"), d("0")),
    ]
    assert loaded[0]["x_UpstreamModel"] is None  # a purchase belongs to no model's usage
    assert loaded[1]["EffectiveCost"] == d("1.000000001")


def test_scope_override_names_with_wildcards_and_categories(tmp_path: Path):
    gen = toolkit_export(tmp_path / "gen", "aws", "1.2")
    header, generated = read_rows(gen)
    t = generated[0]
    rows = [
        llm_row(t, "aws"),
        llm_row(
            t,
            "aws",
            ServiceName="Claude 3.5 Sonnet (Amazon Bedrock Edition)",
            ServiceCategory="",
            ServiceSubcategory="",
        ),  # fmt: skip
        llm_row(t, "aws", ServiceName="Amazon SageMaker", ServiceSubcategory="Machine Learning"),
        llm_row(t, "aws", ServiceName="Our Gateway", ServiceCategory="Developer Tools"),
        llm_row(t, "aws", ServiceName="100%_literal", ServiceCategory="Other"),
    ]
    path = write(tmp_path / "s.csv", header, rows)

    # Default: Bedrock and its marketplace editions; SageMaker's subcategory is not LLM spend.
    res, loaded = _load(path)
    assert [r["x_SourceLine"] for r in loaded] == [2, 3]
    # Names only (no category rule), case-insensitive, * for any text; % and _ are literal.
    scope = SimpleNamespace(
        service_names=["our gateway", "*edition)", "100%_literal"],
        service_categories=None,
        service_subcategories=None,
    )
    res, loaded = _load(path, scope)
    assert [r["x_SourceLine"] for r in loaded] == [3, 5, 6]
    assert res.out_of_scope == 2
    # Categories without a subcategory restriction: the whole AI category, SageMaker included.
    scope = SimpleNamespace(
        service_names=None,
        service_categories=["AI and Machine Learning"],
        service_subcategories=None,
    )
    res, loaded = _load(path, scope)
    assert [r["x_SourceLine"] for r in loaded] == [2, 4]


def test_scope_params_are_data_not_sql():
    p = FocusScope(("a'b", "x*y", "(Amazon Bedrock Edition)"), ("c",), None).params()
    assert p["name_regex"] == r"(?:a'b)|(?:x.*y)|(?:\(amazon\ bedrock\ edition\))"
    assert p["any_subcategory"] is True and p["categories"] == ["c"]
    assert FocusScope(None, ("c",), ("s",)).params()["name_regex"] == r"[^\s\S]"


def _config_with(tmp_path: Path, provider: str, scope_yaml: str) -> Path:
    lines = ACME.read_text(encoding="utf-8").splitlines(keepends=True)
    i = next(n for n, ln in enumerate(lines) if ln.strip() == f"- id: {provider}")
    out = tmp_path / "ledger.yaml"
    out.write_text("".join(lines[: i + 1] + [f"    focus_scope: {scope_yaml}\n"] + lines[i + 1 :]))
    return out


def test_config_focus_scope_loads_and_reaches_the_scope(tmp_path: Path):
    cfg = load_config(
        _config_with(tmp_path, "bedrock", "{service_names: ['Amazon Bedrock', '* Edition)']}")
    )
    bedrock = next(p for p in cfg.providers if p.id == "bedrock")
    assert FocusScope.of(bedrock) == FocusScope(("Amazon Bedrock", "* Edition)"), None, None)
    vertex = next(p for p in cfg.providers if p.id == "vertex")
    assert FocusScope.of(vertex) == FocusScope()  # no focus_scope: the default


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("{service_names: []}", r"focus_scope\.service_names: List should have at least 1"),
        ("{service_name: [x]}", r"focus_scope\.service_name: unknown key"),
        ("{service_names: 'Amazon Bedrock'}", r"focus_scope\.service_names: Input should be"),
        ("{service_names: [12]}", r"focus_scope\.service_names\[0\]: Input should be a valid str"),
        ("{service_names: ['  ']}", r"focus_scope\.service_names\[0\]"),
        ("{}", r"focus_scope: focus_scope needs service_names or service_categories"),
        ("{service_names: [a], service_subcategories: [b]}", r"focus_scope: service_sub.*narrows"),
    ],
)
def test_config_focus_scope_problems_name_the_key(tmp_path: Path, scope: str, message: str):
    with pytest.raises(ConfigError, match=r"providers\[2\]\." + message):
        load_config(_config_with(tmp_path, "bedrock", scope))


def test_config_focus_scope_on_a_non_focus_provider_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"providers\[0\].*focus_scope applies to FOCUS"):
        load_config(_config_with(tmp_path, "openai", "{service_names: [x]}"))


# Columns FOCUS 1.1 added (1.2 then added the pricing-currency, invoice and account-type ones).
SINCE_1_1 = {
    "ServiceSubcategory", "SkuMeter", "SkuPriceDetails", "CommitmentDiscountStatus",
    "CommitmentDiscountQuantity", "CommitmentDiscountUnit", "CapacityReservationId",
    "CapacityReservationStatus",
}  # fmt: skip
SINCE_1_2 = {
    "InvoiceId", "BillingAccountType", "SubAccountType", "PricingCurrency",
    "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
}  # fmt: skip


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_focus_1_0_and_1_1_column_sets_load(tmp_path: Path, version: str):
    gen = toolkit_export(tmp_path / "gen", "gcp", "1.2")
    header, generated = read_rows(gen)
    drop = SINCE_1_2 | (SINCE_1_1 if version == "1.0" else set())
    old = [c for c in header if c not in drop]
    t = generated[0]
    llm = _injected(t, "gcp")
    sagemaker_like = llm_row(
        t, "gcp", ServiceName="Vertex AI Workbench", ServiceSubcategory="Machine Learning"
    )
    rows = [{c: r.get(c, "") for c in old} for r in [*generated, *llm, sagemaker_like]]
    res, loaded = _load(write(tmp_path / f"focus_{version}.csv", old, rows))
    # 1.0 has no ServiceSubcategory: the whole 'AI and Machine Learning' category is in scope
    # there, so the ML notebook line is kept; from 1.1 on its subcategory keeps it out.
    n_llm = len(llm) + (1 if version == "1.0" else 0)
    assert (res.lines, res.loaded) == (len(rows), n_llm)
    assert res.out_of_scope_usd == billed_total(generated) + (
        0 if version == "1.0" else nano("0.123456789")
    )
    assert sum(r["BilledCost"] for r in loaded[:5]) == Decimal("1.883456781")
    # 1.0 has no SkuMeter either: the token type is unknown there.
    want_tokens = [None] * 5 if version == "1.0" else ["input", "output", "input", None, None]
    assert [r["x_TokenType"] for r in loaded[:5]] == want_tokens
    assert ("ServiceSubcategory" in res.columns) is (version == "1.1")


def test_the_1_3_contract_commitment_dataset_is_counted_not_refused(tmp_path: Path):
    toolkit_export(tmp_path / "gen", "azure", "1.3")
    (terms,) = (tmp_path / "gen").glob("focus_1_3_contract_commitment_azure.csv")
    _, rows = read_rows(terms)
    assert rows and "ContractCommitmentCost" in rows[0]
    res, loaded = _load(terms)
    assert (res.lines, res.loaded, res.out_of_scope, res.out_of_scope_usd) == (
        len(rows),
        0,
        len(rows),
        Decimal(0),
    )
    assert loaded == []


def test_check_config_exits_2_naming_the_focus_scope_key(tmp_path: Path):
    import subprocess
    import sys

    cfg = _config_with(tmp_path, "bedrock", "{service_names: []}")
    cli = Path(sys.executable).with_name("byok-ledger")
    r = subprocess.run([str(cli), "check-config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "providers[2].focus_scope.service_names" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
