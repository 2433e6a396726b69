"""`byok-ledger export` end to end: a small simulated ledger (four days across a month end, with
a provider credit and a late correction), the real pipeline, then FOCUS 1.2 and Parquet
exports checked for columns, types, allowed values, totals to the cent, and refusals."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from pipeline.export import (
    CHARGE_CATEGORIES,
    FOCUS_COLUMNS,
    FOCUS_EXTENSIONS,
    FOCUS_MONEY,
    ExportError,
    export_month,
    iter_focus_columns,
)
from routing_core.config import load_config

REPO = Path(__file__).resolve().parents[2]
OCT, NOV = "2026-10", "2026-11"
CENT = Decimal("0.01")


def _env() -> dict[str, str]:
    drop = ("DAGSTER_HOME", "BYOK_LEDGER_CONFIG", "BYOK_LEDGER_START")
    return {k: v for k, v in os.environ.items() if k not in drop}


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "byok_ledger.cli", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated Oct 29 - Nov 1, 2026 through the real router and pipeline; the config path."""
    out = tmp_path_factory.mktemp("export") / "sim"
    sim = cli(
        "simulate",
        "--out",
        str(out),
        "--start",
        "2026-10-29",
        "--days",
        "4",
        "--requests-per-day",
        "40",
        "--quiet",
    )
    assert sim.returncode == 0, sim.stdout + sim.stderr
    run = cli("run", "--config", str(out / "ledger.yaml"))
    assert run.returncode == 0, run.stdout + run.stderr
    return out / "ledger.yaml"


def _db(cfg: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(load_config(cfg).duckdb_path), read_only=True)


def _mart_total(cfg: Path, month: str) -> Decimal:
    first = dt.date.fromisoformat(month + "-01")
    last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    with _db(cfg) as c:
        split = c.execute(
            "SELECT coalesce(sum(total_usd), 0) FROM marts.split_billing_daily "
            "WHERE day BETWEEN ? AND ?",
            [first, last],
        ).fetchall()[0][0]
        other = c.execute(
            "SELECT coalesce(sum(billed_usd), 0) FROM marts.non_usage_charges "
            "WHERE day BETWEEN ? AND ?",
            [first, last],
        ).fetchall()[0][0]
    return split + other


def _focus(path: Path) -> pa.Table:
    return pq.read_table(path) if path.suffix == ".parquet" else pa_csv.read_csv(path)


def test_focus_parquet_columns_types_and_allowed_values(ledger: Path, tmp_path: Path):
    out = tmp_path / "oct.parquet"
    proc = cli(
        "export", "--config", str(ledger), "--month", OCT, "--format", "focus", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exported 2026-10 as focus" in proc.stdout
    t = pq.read_table(out)
    assert t.column_names == list(iter_focus_columns())
    # The whole FOCUS 1.2 Cost and Usage header, as a FOCUS schema detector sees it.
    from focus_data_toolkit.schema.detection import detect_focus_schema

    found = detect_focus_schema(t.column_names)
    assert (found.dataset, found.detected_version) == ("Cost and Usage", "1.2")
    assert found.exact_match and not found.missing_columns and not found.unknown_columns
    assert set(found.extension_columns) == set(FOCUS_EXTENSIONS)
    mandatory = [n for n, level in FOCUS_COLUMNS if level == "Mandatory"]
    assert {
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
        "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
        "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
        "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
        "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
    } <= set(mandatory)  # fmt: skip
    for col in FOCUS_MONEY + ("PricingQuantity", "ConsumedQuantity"):
        assert t.schema.field(col).type == pa.decimal128(38, 9), col  # money never a float
    for col in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
        typ = t.schema.field(col).type
        assert pa.types.is_timestamp(typ) and typ.tz in ("UTC", "Etc/UTC"), col
    rows = t.to_pylist()
    assert rows
    for r in rows:
        for col in ("BilledCost", "BillingAccountId", "BillingCurrency", "ChargeCategory",
                    "ChargeDescription", "ContractedCost", "EffectiveCost", "InvoiceIssuerName",
                    "ListCost", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
                    "ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):  # fmt: skip
            assert r[col] is not None, (col, r)
        assert r["ChargeCategory"] in CHARGE_CATEGORIES
        assert r["ChargeClass"] in (None, "Correction")
        assert r["BillingCurrency"] == "USD"
        assert r["ServiceCategory"] == "AI and Machine Learning"
        assert r["ChargeFrequency"] in ("One-Time", "Recurring", "Usage-Based")
        assert r["ChargePeriodEnd"] - r["ChargePeriodStart"] == dt.timedelta(days=1)
        assert r["ChargePeriodStart"].date().isoformat()[:7] == OCT
        assert r["BillingPeriodEnd"] > r["BillingPeriodStart"]
        if r["ChargeCategory"] == "Tax":
            assert r["PricingQuantity"] is None
        if r["ChargeCategory"] == "Usage" and r["ChargeClass"] is None:
            assert r["PricingQuantity"] is not None and r["PricingUnit"] == "Requests"
        if r["ChargeCategory"] in ("Credit", "Adjustment"):
            assert r["ListCost"] == r["BilledCost"] == r["EffectiveCost"]
        tags = json.loads(r["Tags"]) if r["Tags"] is not None else {}
        assert set(tags) <= {"api_key", "environment", "app", "workload", "member"}
        if r["x_Attribution"] == "logged":
            assert tags.get("api_key") == r["x_ApiKeyId"] and tags.get("environment")
    layers = {r["x_BillingLayer"] for r in rows}
    assert {"provider_usage", "platform_credits", "non_usage", "provider_correction"} <= layers
    # The simulated late correction: a Usage/Correction row invoiced in November's billing
    # period for an October day; the credit is a Credit row.
    corr = [r for r in rows if r["ChargeClass"] == "Correction"]
    assert corr and all(r["ChargeCategory"] == "Usage" for r in corr)
    assert all(r["BillingPeriodStart"].date() == dt.date(2026, 11, 1) for r in corr)
    assert sum(r["BilledCost"] for r in corr) < 0
    credits = [r for r in rows if r["ChargeCategory"] == "Credit"]
    assert credits and all(r["BilledCost"] < 0 for r in credits)
    # BYOK usage is invoiced by the provider; shared capacity and fees by the platform.
    byok = [r for r in rows if r["x_BillingLayer"] == "provider_usage"]
    assert all(r["InvoiceIssuerName"] == r["ProviderName"] != "OpenRouter" for r in byok)
    shared = [r for r in rows if r["x_BillingLayer"] == "platform_credits"]
    assert all(r["InvoiceIssuerName"] == "OpenRouter" for r in shared)


@pytest.mark.parametrize("month", [OCT, NOV])
def test_focus_totals_equal_the_marts_to_the_cent(ledger: Path, tmp_path: Path, month: str):
    cfg = load_config(ledger)
    result = export_month(cfg, month, "focus", tmp_path / f"{month}.csv")
    t = pa_csv.read_csv(tmp_path / f"{month}.csv").to_pylist()
    # CSV keeps exact decimal text: parse it as Decimal, never as a float.
    text_rows = (tmp_path / f"{month}.csv").read_text().splitlines()
    assert len(text_rows) == len(t) + 1
    with _db(ledger) as c:
        exact = c.execute(
            f"SELECT sum(CAST(BilledCost AS DECIMAL(38, 9))) FROM read_csv('{tmp_path / month}.csv', "
            "all_varchar = true)"
        ).fetchall()[0][0]
    marts = _mart_total(ledger, month)
    assert exact == result.billed_cost_usd
    assert exact.quantize(CENT) == marts.quantize(CENT)
    assert abs(exact - marts) < Decimal("0.000000001") * len(t) + Decimal("0.000000001")
    # CSV decimals are plain decimal text (never 0E-9), date/times ISO 8601 UTC.
    assert not any(re.search(r"\d+(\.\d+)?E-?\d+", row) for row in text_rows)
    assert all(
        re.fullmatch(r"-?\d+\.\d{9}", r["BilledCost"])
        for r in pa_csv.read_csv(
            tmp_path / f"{month}.csv",
            convert_options=pa_csv.ConvertOptions(column_types={"BilledCost": pa.string()}),
        ).to_pylist()
    )
    first = text_rows[1]
    assert f'"{month}-01T00:00:00Z"' in first


def test_focus_by_layer_matches_split_billing_columns(ledger: Path, tmp_path: Path):
    out = tmp_path / "oct.parquet"
    export_month(load_config(ledger), OCT, "focus", out)
    with _db(ledger) as c:
        f = dict(
            c.execute(
                f"SELECT x_BillingLayer, sum(BilledCost) FROM '{out}' GROUP BY ALL"
            ).fetchall()
        )
        s = c.execute(
            "SELECT sum(coalesce(provider_billed_usd, provider_estimated_usd)), "
            "sum(platform_fee_usd), sum(platform_credits_usd) FROM marts.split_billing_daily "
            "WHERE day BETWEEN '2026-10-01' AND '2026-10-31'"
        ).fetchall()[0]
    zero = Decimal(0)
    assert f.get("provider_usage", zero) + f.get("provider_correction", zero) == s[0]
    assert f.get("platform_fee", zero) == s[1]
    assert f.get("platform_credits", zero) == s[2]


def test_parquet_marts_folder(ledger: Path, tmp_path: Path):
    out = tmp_path / "marts"
    proc = cli(
        "export", "--config", str(ledger), "--month", NOV, "--format", "parquet", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with _db(ledger) as c:
        marts = {
            r[0]
            for r in c.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
            ).fetchall()
        }
        split_nov = c.execute(
            "SELECT count(*), sum(total_usd) FROM marts.split_billing_daily "
            "WHERE day BETWEEN '2026-11-01' AND '2026-11-30'"
        ).fetchall()[0]
    files = {p.name for p in out.iterdir()}
    assert files == {f"{m}.parquet" for m in marts} | {"manifest.json"}
    assert {"split_billing_daily", "reconciliation_daily", "cost_per_accepted_output"} <= marts
    split = pq.read_table(out / "split_billing_daily.parquet")
    assert split.schema.field("total_usd").type == pa.decimal128(38, 9)
    assert split.num_rows == split_nov[0]
    assert sum(split.column("total_usd").to_pylist()) == split_nov[1]
    assert {d.isoformat()[:7] for d in split.column("day").to_pylist()} == {NOV}
    cpa = pq.read_table(out / "cost_per_accepted_output.parquet")
    assert {d.isoformat()[:7] for d in cpa.column("period").to_pylist()} <= {NOV}
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["month"] == NOV
        and manifest["files"]["split_billing_daily.parquet"]["rows"] == split_nov[0]
    )
    # Re-running gives the same bytes (and is allowed: the folder is ours and unchanged).
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = cli(
        "export", "--config", str(ledger), "--month", NOV, "--format", "parquet", "--out", str(out)
    )
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_rerun_focus_is_byte_identical(ledger: Path, tmp_path: Path):
    out = tmp_path / "oct.csv"
    cfg = load_config(ledger)
    export_month(cfg, OCT, "focus", out)
    first = out.read_bytes()
    export_month(cfg, OCT, "focus", out)
    assert out.read_bytes() == first
    assert (
        json.loads((tmp_path / "oct.csv.manifest.json").read_text())["files"]["oct.csv"]["rows"] > 0
    )


def _refused(ledger: Path, *args: str) -> str:
    proc = cli("export", "--config", str(ledger), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_refuses_to_overwrite_what_it_did_not_write(ledger: Path, tmp_path: Path):
    theirs = tmp_path / "finance.csv"
    theirs.write_text("someone's numbers\n")
    err = _refused(ledger, "--month", OCT, "--format", "focus", "--out", str(theirs))
    assert "finance.csv" in err and "never overwrites" in err
    assert theirs.read_text() == "someone's numbers\n"
    # Ours, but edited since: refused too.
    ours = tmp_path / "ours.parquet"
    export_month(load_config(ledger), OCT, "focus", ours)
    ours.write_bytes(ours.read_bytes() + b"x")
    _refused(ledger, "--month", OCT, "--format", "focus", "--out", str(ours))
    # A folder of someone else's files.
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    err = _refused(ledger, "--month", OCT, "--format", "parquet", "--out", str(folder))
    assert (folder / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    # A forged manifest does not make a foreign file ours.
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "split_billing_daily.parquet").write_bytes(b"not ours")
    (forged / "manifest.json").write_text(
        json.dumps(
            {
                "tool": "byok-ledger export",
                "files": {"split_billing_daily.parquet": {"sha256": "0" * 64}},
            }
        )
    )
    _refused(ledger, "--month", OCT, "--format", "parquet", "--out", str(forged))
    assert (forged / "split_billing_daily.parquet").read_bytes() == b"not ours"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--month", "2026-9", "--format", "focus", "--out", "x.csv"], "YYYY-MM"),
        (["--month", "2026-13", "--format", "focus", "--out", "x.csv"], "YYYY-MM"),
        (
            ["--month", "2025-01", "--format", "focus", "--out", "x.csv"],
            "no ledger rows in 2025-01",
        ),
        (["--month", "2025-01", "--format", "parquet", "--out", "m"], "no ledger rows in 2025-01"),
        (["--month", OCT, "--format", "focus", "--out", "x.json"], ".csv or .parquet"),
        (["--month", OCT, "--format", "focus", "--out", "nowhere/x.csv"], "does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(ledger: Path, tmp_path: Path, args, needle):
    args = [
        a if not a.endswith((".csv", ".json")) and a != "m" else str(tmp_path / a) for a in args
    ]
    err = _refused(ledger, *args)
    assert needle in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "x.csv").exists()


def test_missing_database_is_a_refusal(tmp_path: Path):
    cfg_text = (REPO / "examples" / "acme" / "ledger.yaml").read_text()
    cfg = tmp_path / "ledger.yaml"
    cfg.write_text(cfg_text)
    with pytest.raises(ExportError, match="no ledger database"):
        export_month(load_config(cfg), OCT, "focus", tmp_path / "x.csv")
