"""Hostile invoice files: each one is refused WHOLE (none of its lines count) with its reason
code, line and raw text, its days are covered `unreadable`, the good neighbour file still
loads to the cent, and every file's lines add up (lines = loaded + duplicates + quarantined +
out_of_scope). Against a real DuckDB file, through `loads.load_invoices`."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from pipeline_testkit import Ledger

from pipeline.loads import DayRange, load_invoices
from routing_core.config import load_config

MAR_2 = 1772409600  # 2026-03-02T00:00:00Z
DAYS = DayRange(dt.date(2026, 3, 1), dt.date(2026, 3, 3))
GOOD_USD = Decimal("1.5")


def oai_result(value: object = 1.5, **kw: object) -> dict:
    r = {
        "object": "organization.costs.result",
        "amount": {"value": value, "currency": kw.pop("currency", "usd")},
        "line_item": "gpt-4.1-2025-04-14, input",
        "project_id": "proj_acme_prod",
        "api_key_id": "key_prod_primary",
    }
    r.update(kw)
    return r


def oai_page(*buckets: dict) -> dict:
    return {"object": "page", "data": list(buckets), "has_more": False, "next_page": None}


def bucket(start: int = MAR_2, end: int | None = MAR_2 + 86400, results: object = None) -> dict:
    return {
        "object": "bucket",
        "start_time": start,
        "end_time": end,
        "results": [oai_result()] if results is None else results,
    }


def dumps(doc: object) -> str:
    return json.dumps(doc, indent=1) + "\n"


STATEMENT_HEAD = "date,model,provider_name,usage,byok_usage_inference,byok_requests,requests\n"
STATEMENT_ROW = "2026-03-02,openai/gpt-4.1,OpenAI,0.2,4.0,2,2\n"


@pytest.fixture
def inv(ledger: Ledger) -> Ledger:
    """The Acme ledger with one good OpenAI page ($1.50 on 2026-03-02)."""
    (ledger.invoices / "openai").mkdir()
    (ledger.invoices / "openai" / "costs_good.json").write_text(dumps(oai_page(bucket())))
    return ledger


def load(led: Ledger, days: DayRange = DAYS) -> dict[str, int]:
    cfg = load_config(led.config)
    with duckdb.connect(str(led.duckdb)) as conn:
        return load_invoices(conn, cfg, days)


def latest_manifest(led: Ledger) -> dict[str, tuple]:
    rows = led.query(
        "SELECT file, status, reason, lines, loaded, duplicates, quarantined, out_of_scope "
        "FROM raw.load_manifest WHERE source IN ('invoices', 'statement') "
        "QUALIFY row_number() OVER (PARTITION BY file ORDER BY loaded_at DESC) = 1"
    )
    return {Path(r[0]).name: r[1:] for r in rows}


def assert_identity(led: Ledger) -> None:
    for name, (status, _r, lines, loaded, dups, quar, oos) in latest_manifest(led).items():
        assert lines == loaded + dups + quar + oos, (name, status)


def good_still_loads(led: Ledger) -> None:
    billed = led.query(
        "SELECT sum(BilledCost), count(*) FROM staging.invoice_lines "
        "WHERE x_SourceFile LIKE '%costs_good.json'"
    )
    assert billed == [(GOOD_USD, 1)]


HOSTILE = [
    # (case, folder, file name, content, reason, line, raw text fragment, unreadable days)
    (
        "truncated_json",
        "openai",
        "costs_cut.json",
        dumps(oai_page(bucket(MAR_2 + 86400, MAR_2 + 2 * 86400)))[:150],
        "truncated",
        10,  # the text line where the JSON stops
        '"object"',
        ["2026-03-03"],  # from the bucket start_time still in the text
    ),
    (
        "csv_cut_mid_row",
        "_platform",
        "activity.csv",
        STATEMENT_HEAD + STATEMENT_ROW + "2026-03-03,openai/gpt-4.1,OpenAI,0.77",
        "truncated",
        3,
        "0.77",
        ["2026-03-02"],  # the row parsed before the cut
    ),
    (
        "csv_extra_column",
        "_platform",
        "activity.csv",
        STATEMENT_HEAD + STATEMENT_ROW + "2026-03-02,openai/gpt-4.1,OpenAI,0.3,1,1,1,oops\n",
        "wrong_column_count",
        3,
        "oops",
        ["2026-03-02"],
    ),
    (
        "csv_missing_column",
        "_platform",
        "activity.csv",
        STATEMENT_HEAD + "2026-03-02,openai/gpt-4.1,OpenAI,0.3,1,1\n" + STATEMENT_ROW,
        "short_row",
        2,
        "0.3,1,1",
        ["2026-03-02"],  # nothing parsed: the dates in the text
    ),
    (
        "amount_1e30",
        "openai",
        "costs_big.json",
        dumps(oai_page(bucket(results=[oai_result(1), oai_result("@")]))).replace('"@"', "1e30"),
        "amount_out_of_range",
        2,
        "1E+30",
        ["2026-03-02"],
    ),
    (
        "amount_nan_string",
        "openai",
        "costs_nan.json",
        dumps(oai_page(bucket(results=[oai_result("NaN")]))),
        "amount_not_finite",
        1,
        "NaN",
        ["2026-03-02"],
    ),
    (
        "amount_bare_minus_infinity",
        "openai",
        "costs_inf.json",
        dumps(oai_page(bucket(results=[oai_result("@")]))).replace('"@"', "-Infinity"),
        "amount_not_finite",
        1,
        "Infinity",
        ["2026-03-02"],
    ),
    (
        "amount_bool",
        "openai",
        "costs_bool.json",
        dumps(oai_page(bucket(results=[oai_result(True)]))),
        "bad_amount",
        1,
        "true",
        ["2026-03-02"],
    ),
    (
        "unknown_currency",
        "openai",
        "costs_eur.json",
        dumps(oai_page(bucket(results=[oai_result(1, currency="eur")]))),
        "unknown_currency",
        1,
        "eur",
        ["2026-03-02"],
    ),
    (
        "non_utf8",
        "_platform",
        "activity.csv",
        (STATEMENT_HEAD + STATEMENT_ROW).encode() + b"2026-03-03,caf\xe9,OpenAI,1,1,1,1\n",
        "not_utf8",
        3,
        "caf",
        ["2026-03-02", "2026-03-03"],  # nothing parsed: the dates in the text
    ),
    (
        "empty_file",
        "openai",
        "costs_2026-03-03.json",
        "",
        "empty_file",
        None,
        None,
        ["2026-03-03"],  # nothing to read: the date in the file name
    ),
    (
        "data_not_a_list",
        "openai",
        "costs_obj.json",
        dumps({"object": "page", "data": {"start_time": MAR_2}}),
        "not_a_page",
        1,
        '"data"',
        ["2026-03-02"],  # the start_time in the text
    ),
    (
        "bucket_end_before_start",
        "openai",
        "costs_back.json",
        dumps(oai_page(bucket(MAR_2 + 86400, MAR_2))),
        "bucket_period",
        None,
        None,
        ["2026-03-03"],
    ),
    (
        "statement_bad_count",
        "_platform",
        "activity.json",
        dumps(
            {
                "data": [
                    {
                        "date": "2026-03-02",
                        "model": "m",
                        "provider_name": "OpenAI",
                        "usage": "0.1",
                        "requests": "many",
                    }
                ]
            }
        ),
        "bad_count",
        1,
        "many",
        ["2026-03-02"],
    ),
    (
        "statement_bad_usage",
        "_platform",
        "activity.json",
        dumps(
            {
                "data": [
                    {"date": "2026-03-02", "model": "m", "provider_name": "OpenAI", "usage": "12,5"}
                ]
            }
        ),
        "bad_amount",
        1,
        "12,5",
        ["2026-03-02"],
    ),
    (
        "anthropic_amount_as_number",
        "anthropic",
        "cost_report.json",
        dumps(
            {
                "data": [
                    {
                        "starting_at": "2026-03-02T00:00:00Z",
                        "ending_at": "2026-03-03T00:00:00Z",
                        "results": [{"amount": 12.5, "model": "m"}],
                    }
                ]
            }
        ),
        "bad_amount",
        1,
        "12.5",
        ["2026-03-02"],
    ),
    (
        "unix_time_out_of_range",
        "openai",
        "costs_time.json",
        dumps(oai_page(bucket(10**30, None))),
        "bad_timestamp",
        None,
        None,
        [],
    ),
    (
        "result_not_an_object",
        "openai",
        "costs_list.json",
        dumps(oai_page(bucket(results=[[1, 2, 3]]))),
        "bad_type",
        1,
        "[1, 2, 3]",
        ["2026-03-02"],
    ),
    (
        "unknown_extension",
        "openai",
        "notes.txt",
        "hello\n",
        "unknown_file",
        None,
        None,
        [],
    ),
    (
        "unknown_provider_folder",
        "opneai",
        "costs.json",
        dumps(oai_page(bucket())),
        "unknown_file",
        None,
        None,
        [],
    ),
    (
        "focus_csv_cut_mid_row",  # issue 8: the partial row used to load as a $0.77 line
        "bedrock",
        "focus_2026-03.csv",
        (
            "BillingAccountId,SubAccountId,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,"
            "BilledCost,BillingCurrency,ServiceName,ServiceCategory,ResourceId,SkuMeter\n"
            "998877665544,412938475610,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,Usage,0.60,USD,"
            "Amazon Bedrock,AI and Machine Learning,arn:aws:bedrock:us-east-1::foundation-model/"
            "m,Input Tokens\n"
            "998877665544,412938475610,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,Usage,0.770769"
        ),
        "truncated",
        3,
        "0.770769",
        ["2026-03-02", "2026-03-03"],  # the dates in the text (nothing of it counts)
    ),
    (
        "statement_amount_1e30_string",
        "_platform",
        "activity.json",
        dumps(
            {
                "data": [
                    {"date": "2026-03-02", "model": "m", "provider_name": "OpenAI", "usage": "1e30"}
                ]
            }
        ),
        "amount_out_of_range",
        1,
        "1e30",
        ["2026-03-02"],
    ),
    (
        "json_number_too_long",
        "openai",
        "costs_digits.json",
        dumps(oai_page(bucket(results=[oai_result("@")]))).replace('"@"', "9" * 5000),
        "invalid_json",
        None,
        None,
        ["2026-03-02"],
    ),
]


@pytest.mark.parametrize(
    ("folder", "name", "content", "reason", "line", "raw", "days"),
    [pytest.param(*c[1:], id=c[0]) for c in HOSTILE],
)
def test_a_hostile_file_is_refused_whole_and_the_others_load(
    inv: Ledger, folder, name, content, reason, line, raw, days
):
    (inv.invoices / folder).mkdir(exist_ok=True)
    path = inv.invoices / folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    stats = load(inv)  # never raises: one bad invoice does not stop the load
    assert stats["refused"] == 1
    good_still_loads(inv)
    # Nothing of the refused file counts, not even the lines before the bad one.
    assert inv.query(
        "SELECT count(*) FROM staging.invoice_lines WHERE x_SourceFile = ?", [str(path)]
    ) == [(0,)]
    status, why, lines, loaded, dups, quarantined, _ = latest_manifest(inv)[name]
    assert (status, loaded, dups) == ("refused", 0, 0)
    assert why.startswith(f"{reason} at {path}" + (f":{line}:" if line else ":"))
    assert quarantined == lines
    assert_identity(inv)
    (rej,) = inv.query(
        "SELECT line, error, raw_text FROM raw.rejected_records WHERE file = ?", [str(path)]
    )
    assert rej[0] == line and rej[1].startswith(reason)
    if raw is not None:
        assert raw in rej[2]
    unreadable = inv.query(
        "SELECT DISTINCT CAST(day AS VARCHAR) FROM staging.invoice_coverage "
        "WHERE status = 'unreadable' AND file = ? ORDER BY 1",
        [str(path)],
    )
    assert [d for (d,) in unreadable] == [d for d in days if DAYS.start.isoformat() <= d]
    # A second load re-parses nothing and keeps the verdict.
    again = load(inv)
    assert (again["parsed"], again["refused"]) == (0, 1)
    assert latest_manifest(inv)[name][0] == "unchanged"
    assert_identity(inv)


def test_fixing_a_refused_file_loads_it_and_clears_its_rejection(inv: Ledger):
    path = inv.invoices / "openai" / "costs_b.json"
    path.write_text(dumps(oai_page(bucket(MAR_2 + 86400, MAR_2 + 2 * 86400)))[:120])
    load(inv)
    path.write_text(dumps(oai_page(bucket(MAR_2 + 86400, MAR_2 + 2 * 86400))))
    stats = load(inv)
    assert (stats["parsed"], stats["refused"]) == (1, 0)
    assert inv.query("SELECT count(*) FROM raw.rejected_records") == [(0,)]
    assert inv.query(
        "SELECT CAST(day AS VARCHAR), status FROM staging.invoice_coverage ORDER BY 1"
    ) == [("2026-03-02", "arrived"), ("2026-03-03", "arrived")]
    assert_identity(inv)
