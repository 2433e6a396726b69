"""Hostile FOCUS exports: each is refused whole with an `InvoiceError` that names the file, the
line (and column) and a reason code, and leaves nothing of the file in the target table; the
tolerated spellings (NULLs, timestamps with or without T/Z, offsets) load to the right value."""

from __future__ import annotations

import datetime as dt
import gzip
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipeline.sources.focus import parse_focus_file
from pipeline.sources.invoices import InvoiceError

HEADER = (
    "BillingAccountId,SubAccountId,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeClass,"
    "BilledCost,EffectiveCost,BillingCurrency,ServiceName,ServiceCategory,ResourceId,SkuMeter,"
    "ConsumedQuantity,Tags"
)
GOOD = (
    "998877665544,412938475610,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,Usage,,0.770769,"
    "0.770769,USD,Amazon Bedrock,AI and Machine Learning,"
    "arn:aws:bedrock:us-east-1::foundation-model/m1,Input Tokens,1000,"
)
EC2 = (
    "998877665544,412938475610,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,Usage,,3.5,3.5,USD,"
    "AmazonEC2,Compute,i-0abc,Compute,1,"
)


def _with(**cols: str) -> str:
    """GOOD with some columns replaced (values are CSV-ready text)."""
    names = HEADER.split(",")
    values = GOOD.split(",")
    values = values[:11] + [",".join(values[11:12])] + values[12:]
    out = dict(zip(names, values, strict=True))
    out.update(cols)
    return ",".join(out[n] for n in names)


def _load(path: Path) -> tuple[duckdb.DuckDBPyConnection, object]:
    conn = duckdb.connect()
    return conn, parse_focus_file(conn, path, "bedrock", None, {"m1"}, "_t")


def _refused(path: Path, reason: str, line: int | None, *words: str) -> InvoiceError:
    conn = duckdb.connect()
    with pytest.raises(InvoiceError) as info:
        parse_focus_file(conn, path, "bedrock", None, {"m1"}, "_t")
    err = info.value
    assert err.reason == reason, str(err)
    assert err.line == line, str(err)
    msg = str(err)
    assert msg.startswith(f"{path}: " + (f"line {line}: " if line is not None else "")), msg
    for w in words:
        assert w in msg, msg
    assert conn.execute("SELECT count(*) FROM _t").fetchone()[0] == 0  # nothing of the file
    return err


def _csv(tmp_path: Path, *lines: str, name: str = "focus.csv", end: str = "\n") -> Path:
    p = tmp_path / name
    p.write_bytes(("\n".join((HEADER, *lines)) + end).encode("utf-8"))
    return p


def test_truncated_mid_row_is_refused_not_read_as_a_short_amount(tmp_path: Path):
    # The case: cut inside BilledCost, so the row ends at "0.77".
    p = _csv(tmp_path, EC2, GOOD, GOOD[: GOOD.index("0.770769") + 4])
    err = _refused(p, "short_row", 4, "fewer values than the header's 15 columns", "fetch")
    assert err.raw_text is not None and err.raw_text.endswith(",0.77")


def test_truncated_inside_a_quoted_value_is_refused(tmp_path: Path):
    p = _csv(tmp_path, GOOD, _with(Tags='"{""team"":""le'), end="")
    _refused(p, "truncated", 3, "never ends")


def test_cut_in_the_last_column_without_a_final_line_break_is_refused(tmp_path: Path):
    p = _csv(tmp_path, GOOD, _with(Tags='{"te'), end="")
    _refused(p, "truncated", 3, "does not end with a line break")


def test_a_row_with_too_many_values_is_refused(tmp_path: Path):
    _refused(_csv(tmp_path, GOOD, GOOD + ",extra", GOOD), "long_row", 3, "more values")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1e30", "amount_out_of_range"),
        ("99999999999999999999999999999", "amount_out_of_range"),
        ("1000000000000000", "amount_out_of_range"),
        ("NaN", "amount_not_finite"),
        ("-Infinity", "amount_not_finite"),
        ("inf", "amount_not_finite"),
        ("1_000", "bad_amount"),
        ("0x10", "bad_amount"),
        # A stray delimiter: one value too many, even though the row's last value (Tags) is
        # empty (DuckDB alone would drop it and read the row shifted).
        ("1,5", None),
        ("$3.50", "bad_amount"),
        ("", "missing_field"),
    ],
)
def test_bad_billed_cost_refuses_the_file_naming_line_and_column(
    tmp_path: Path, value: str, reason: str | None
):
    p = _csv(tmp_path, GOOD, _with(BilledCost=value), GOOD)
    if reason is None:
        _refused(p, "long_row", 3, "more values than the header's 15 columns")
    else:
        _refused(p, reason, 3, "column BilledCost")


def test_a_bad_amount_on_an_out_of_scope_line_still_refuses_the_file(tmp_path: Path):
    # Its dollars are counted out of scope, so a corrupt one makes that count a lie.
    bad_ec2 = EC2.replace(",3.5,3.5,", ",NaN,3.5,")
    _refused(_csv(tmp_path, GOOD, bad_ec2), "amount_not_finite", 3, "column BilledCost")


def test_bad_effective_cost_of_an_llm_line_is_refused(tmp_path: Path):
    _refused(
        _csv(tmp_path, _with(EffectiveCost="Infinity")),
        "amount_not_finite",
        2,
        "column EffectiveCost",
    )


def test_unknown_currency_is_refused(tmp_path: Path):
    err = _refused(
        _csv(tmp_path, GOOD, EC2, _with(BillingCurrency="EUR")),
        "unknown_currency",
        4,
        "column BillingCurrency",
        "'EUR'",
        "USD only",
    )
    assert "line 4" in str(err)


@pytest.mark.parametrize(
    ("cols", "reason", "column"),
    [
        ({"ChargePeriodStart": "yesterday"}, "bad_timestamp", "ChargePeriodStart"),
        ({"ChargePeriodStart": "2026-13-02"}, "bad_timestamp", "ChargePeriodStart"),
        ({"ChargePeriodStart": "9999-03-02"}, "bad_timestamp", "ChargePeriodStart"),
        ({"ChargePeriodStart": "NULL"}, "missing_field", "ChargePeriodStart"),
        ({"ChargePeriodEnd": "2026-03-01T00:00:00Z"}, "bad_timestamp", "ChargePeriodEnd"),
        ({"ChargeCategory": "Refund"}, "bad_category", "ChargeCategory"),
        ({"ChargeClass": "Reversal"}, "bad_charge_class", "ChargeClass"),
        ({"ConsumedQuantity": "lots"}, "bad_amount", "ConsumedQuantity"),
        ({"Tags": '"[1,2]"'}, "bad_tags", "Tags"),
        ({"Tags": "not-json"}, "bad_tags", "Tags"),
    ],
)
def test_bad_field_is_refused_with_its_column(
    tmp_path: Path, cols: dict[str, str], reason: str, column: str
):
    _refused(_csv(tmp_path, GOOD, _with(**cols)), reason, 3, f"column {column}")


def test_missing_needed_column_is_named(tmp_path: Path):
    p = tmp_path / "no_currency.csv"
    p.write_text("ChargePeriodStart,ChargeCategory,BilledCost,ServiceName\n2026-03-02,Usage,1,x\n")
    _refused(p, "missing_column", 1, "column BillingCurrency", "no BillingCurrency column")


def test_export_without_service_columns_cannot_be_scoped(tmp_path: Path):
    p = tmp_path / "no_service.csv"
    p.write_text(
        "ChargePeriodStart,ChargeCategory,BilledCost,BillingCurrency\n2026-03-02,Usage,1,USD\n"
    )
    _refused(p, "missing_column", 1, "neither ServiceName nor ServiceCategory")


def test_duplicate_needed_column_is_refused(tmp_path: Path):
    p = tmp_path / "dup.csv"
    p.write_text(HEADER + ",billedcost\n" + GOOD + ",9\n")
    _refused(p, "bad_header", 1, "names it twice")


def test_non_utf8_bytes_are_refused_with_their_line(tmp_path: Path):
    p = tmp_path / "latin1.csv"
    p.write_bytes((HEADER + "\n" + GOOD + "\n").encode() + _with(ResourceId="caf\xe9").encode(
        "latin-1"
    ) + b"\n")  # fmt: skip
    _refused(p, "not_utf8", 3)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"   "])
def test_empty_file_is_refused(tmp_path: Path, content: bytes):
    p = tmp_path / "empty.csv"
    p.write_bytes(content)
    _refused(p, "empty_file", 1)


def test_broken_parquet_is_refused(tmp_path: Path):
    p = tmp_path / "x.parquet"
    p.write_bytes(b"PAR1 this is not really parquet")
    _refused(p, "unreadable_parquet", None, "Parquet")


def test_tolerated_spellings_load_to_the_same_values(tmp_path: Path):
    p = _csv(
        tmp_path,
        _with(ChargePeriodStart="2026-03-02 00:00:00", ChargePeriodEnd="NULL", ChargeClass="null"),
        _with(ChargePeriodStart="2026-03-02T05:30:00+05:30", ChargeClass="CORRECTION"),
        _with(ChargePeriodStart="2026-03-02", SubAccountId="N/A", Tags='"{""model"":""m1""}"'),
        _with(ChargePeriodStart="2026-03-01T23:00:00-01:00", ChargeCategory="usage", BilledCost="+5e-1"),
        _with(ChargePeriodStart="2026-03-02 00:00:00 UTC", BilledCost=" 0.0000000015 "),
    )  # fmt: skip
    conn, res = _load(p)
    rows = conn.execute(
        "SELECT ChargePeriodStart, ChargePeriodEnd, ChargeClass, x_Account, BilledCost, "
        "ChargeCategory, x_UpstreamModel FROM _t ORDER BY x_SourceLine"
    ).fetchall()
    midnight = dt.datetime(2026, 3, 2)
    assert [r[0] for r in rows] == [midnight] * 5  # every offset converted to UTC
    assert rows[0][1] is None and rows[0][2] is None
    assert rows[1][2] == "Correction"
    assert rows[2][3] == "billing_account_id=998877665544"  # N/A sub account is a null
    assert rows[3][4] == Decimal("0.5") and rows[3][5] == "Usage"
    assert rows[4][4] == Decimal("0.000000002")  # half away from zero, like DECIMAL(38,9)
    assert {r[6] for r in rows} == {"m1"}
    assert (res.lines, res.loaded, res.out_of_scope) == (5, 5, 0)


def test_gzipped_and_parquet_exports_load_like_the_csv(tmp_path: Path):
    csv_path = _csv(tmp_path, GOOD, EC2, _with(BilledCost="1.000000001", Tags='"{""a"":1}"'))
    gz = tmp_path / "focus.csv.gz"
    gz.write_bytes(gzip.compress(csv_path.read_bytes()))
    pq = tmp_path / "focus.parquet"
    duckdb.connect().execute(
        "COPY (SELECT * REPLACE (BilledCost::DECIMAL(20, 9) AS BilledCost) "
        "FROM read_csv($p, all_varchar = true)) TO '" + str(pq) + "' (FORMAT parquet)",
        {"p": str(csv_path)},
    )
    results = []
    for path in (csv_path, gz, pq):
        conn, res = _load(path)
        rows = conn.execute(
            "SELECT x_SourceLine, BilledCost, Tags FROM _t ORDER BY x_SourceLine"
        ).fetchall()
        results.append((res.lines, res.loaded, res.out_of_scope, res.out_of_scope_usd, rows))
    csv_res, gz_res, pq_res = results
    assert csv_res == gz_res
    assert csv_res[:4] == (3, 2, 1, Decimal("3.5"))
    assert [r[1] for r in csv_res[4]] == [Decimal("0.770769"), Decimal("1.000000001")]
    # Parquet rows are numbered from 1 (no header line); the values are the same.
    assert [r[1:] for r in pq_res[4]] == [r[1:] for r in csv_res[4]]
    assert [r[0] for r in pq_res[4]] == [1, 3]


def test_a_quoted_line_break_inside_a_value_is_one_row(tmp_path: Path):
    p = _csv(tmp_path, _with(SkuMeter='"Input\nTokens"'), GOOD, EC2)
    conn, res = _load(p)
    assert (res.lines, res.loaded) == (3, 2)
    assert conn.execute("SELECT x_SourceLine FROM _t ORDER BY 1").fetchall() == [(2,), (3,)]
    meter = conn.execute("SELECT SkuMeter FROM _t WHERE x_SourceLine = 2").fetchone()
    assert meter == ("Input\nTokens",)


def test_a_raw_line_break_inside_json_tags_is_not_json(tmp_path: Path):
    _refused(_csv(tmp_path, _with(Tags='"{""note"":""two\nlines""}"')), "bad_tags", 2, "Tags")


def test_a_crlf_export_loads(tmp_path: Path):
    p = tmp_path / "crlf.csv"
    p.write_bytes(("\r\n".join((HEADER, GOOD, EC2)) + "\r\n").encode())
    _, res = _load(p)
    assert (res.lines, res.loaded, res.out_of_scope_usd) == (2, 1, Decimal("3.5"))


def test_a_hostile_path_or_header_never_reaches_the_sql(tmp_path: Path):
    folder = tmp_path / "it's; DROP TABLE x; --"
    folder.mkdir()
    p = folder / "focus.csv"
    p.write_text(HEADER + ',"evil"" col; DROP TABLE _t; --"\n' + GOOD + ",1\n")
    conn, res = _load(p)
    assert (res.lines, res.loaded) == (1, 1)
    assert conn.execute("SELECT x_SourceFile FROM _t").fetchone()[0] == str(p)


def test_a_period_over_400_days_is_refused(tmp_path: Path):
    p = _csv(tmp_path, GOOD, _with(ChargePeriodEnd="2027-06-01T00:00:00Z"))
    _refused(p, "bad_timestamp", 3, "column ChargePeriodEnd", "400 days")


def _parquet(path: Path, **cols: object) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(cols), path)
    return path


def test_typed_parquet_columns_load_exactly(tmp_path: Path):
    import pyarrow as pa

    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    p = _parquet(
        tmp_path / "typed.parquet",
        ChargePeriodStart=pa.array(
            [
                dt.datetime(2026, 3, 2, 5, 30, tzinfo=ist),
                dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC),
            ],
            pa.timestamp("us", tz="Asia/Kolkata"),
        ),
        ChargePeriodEnd=pa.array([dt.datetime(2026, 3, 3), None], pa.timestamp("us")),
        ChargeCategory=["Usage", "Usage"],
        BilledCost=pa.array([Decimal("0.123456789"), Decimal("2")], pa.decimal128(20, 9)),
        EffectiveCost=pa.array([0.1, None], pa.float64()),
        BillingCurrency=["USD", "usd"],
        ServiceName=["Vertex AI", "Compute Engine"],
        ServiceCategory=["AI and Machine Learning", "Compute"],
        Tags=pa.array([[("model", "m1")], []], pa.map_(pa.string(), pa.string())),
    )
    conn, res = _load(p)
    assert (res.lines, res.loaded, res.out_of_scope, res.out_of_scope_usd) == (2, 1, 1, Decimal(2))
    row = conn.execute(
        "SELECT ChargePeriodStart, BilledCost, EffectiveCost, Tags, x_UpstreamModel, x_SourceLine "
        "FROM _t"
    ).fetchone()
    assert row == (
        dt.datetime(2026, 3, 2),
        Decimal("0.123456789"),
        Decimal("0.1"),
        '{"model":"m1"}',
        "m1",
        1,
    )


@pytest.mark.parametrize(
    ("value", "reason"), [(float("nan"), "amount_not_finite"), (1e30, "amount_out_of_range")]
)
def test_parquet_float_amounts_out_of_range_are_refused(tmp_path: Path, value: float, reason: str):
    p = _parquet(
        tmp_path / "f.parquet",
        ChargePeriodStart=["2026-03-02", "2026-03-02"],
        ChargeCategory=["Usage", "Usage"],
        BilledCost=[1.5, value],
        BillingCurrency=["USD", "USD"],
        ServiceName=["Vertex AI", "Cloud Storage"],
    )
    _refused(p, reason, 2, "column BilledCost")


def test_bom_and_header_case_are_tolerated(tmp_path: Path):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + (HEADER.lower() + "\n" + GOOD + "\n").encode())
    conn, res = _load(p)
    assert (res.lines, res.loaded) == (1, 1)
    assert conn.execute("SELECT BilledCost, x_SourceLine FROM _t").fetchone() == (
        Decimal("0.770769"),
        2,
    )


def test_a_giant_line_is_refused_not_loaded(tmp_path: Path):
    huge = '"{""k"":""' + "x" * 3_000_000 + '""}"'
    p = _csv(tmp_path, GOOD, _with(Tags=huge), GOOD)
    err = _refused(p, "line_too_long", 3, "over 2 MB")
    assert len(str(err)) < 2_000  # the message never carries the 3 MB value


def test_line_numbers_stay_exact_on_a_parallel_unordered_read(tmp_path: Path):
    # The ledger's connection reads with preserve_insertion_order = false on several threads;
    # x_SourceLine must still be each row's own line.
    p = tmp_path / "big.csv"
    pad = "x" * 200
    with p.open("w", encoding="utf-8") as fh:
        fh.write("ChargePeriodStart,ChargeCategory,BilledCost,BillingCurrency,ServiceName,"
                 "ChargeDescription,Pad\n")  # fmt: skip
        for n in range(2, 250_002):
            svc = "Amazon Bedrock" if n % 7 == 0 else "AmazonEC2"
            fh.write(f"2026-03-02T00:00:00Z,Usage,0.{n:09d},USD,{svc},line {n},{pad}\n")
    conn = duckdb.connect(config={"threads": 4, "preserve_insertion_order": False})
    res = parse_focus_file(conn, p, "bedrock", None, set(), "_t")
    assert res.loaded == len([n for n in range(2, 250_002) if n % 7 == 0])
    wrong = conn.execute(
        "SELECT count(*) FROM _t WHERE ChargeDescription <> 'line ' || x_SourceLine "
        "OR BilledCost <> x_SourceLine * 0.000000001"
    ).fetchone()[0]
    assert wrong == 0


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-03-01 19:00:00 America/New_York", dt.datetime(2026, 3, 2)),
        ("2026-03-02T00:00:00 GMT", dt.datetime(2026, 3, 2)),
        ("2026-03-01T16:00:00-0800", dt.datetime(2026, 3, 2)),
        ("2026-03-02T00:00:00.000z", dt.datetime(2026, 3, 2)),
    ],
)
def test_a_zone_is_converted_never_dropped(tmp_path: Path, text: str, utc: dt.datetime):
    conn, _ = _load(_csv(tmp_path, _with(ChargePeriodStart=text, ChargePeriodEnd="")))
    assert conn.execute("SELECT ChargePeriodStart, day FROM _t").fetchone() == (utc, utc.date())


def test_an_unknown_zone_name_is_refused(tmp_path: Path):
    p = _csv(tmp_path, _with(ChargePeriodStart="2026-03-02 00:00:00 Nowhere/Land"))
    _refused(p, "bad_timestamp", 2, "column ChargePeriodStart")


def test_a_file_that_would_spread_into_millions_of_days_is_refused(tmp_path: Path, monkeypatch):
    import pipeline.sources.focus as focus

    monkeypatch.setattr(focus, "MAX_SPREAD_PARTS", 100)  # the real bound is 5,000,000
    year = _with(ChargePeriodEnd="2027-01-01T00:00:00Z")
    _refused(_csv(tmp_path, GOOD, year), "too_many_days", None, "305 daily lines")
    _, res = _load(_csv(tmp_path, GOOD, _with(ChargePeriodEnd="2026-03-05T00:00:00Z")))
    assert res.loaded == 2  # 1 + 3 day parts are fine


def test_a_stray_delimiter_late_in_the_row_cannot_shift_it_silently(tmp_path: Path):
    # The shift would move ResourceId into SkuMeter and so on, all text: only the column count
    # can tell. The last value (Tags) is empty, which DuckDB alone would drop.
    p = _csv(tmp_path, GOOD, _with(ResourceId="arn:aws:bedrock:us-east-1,x"))
    _refused(p, "long_row", 3)


def test_a_row_missing_its_empty_last_value_is_short(tmp_path: Path):
    p = _csv(tmp_path, GOOD, GOOD[:-1], GOOD)  # the trailing comma of the empty Tags removed
    _refused(p, "short_row", 3, "fewer values")


def test_a_header_only_export_is_an_empty_bill(tmp_path: Path):
    p = tmp_path / "empty_month.csv"
    p.write_text(HEADER + "\n")
    conn, res = _load(p)
    assert (res.lines, res.loaded, res.out_of_scope, res.out_of_scope_usd) == (0, 0, 0, 0)
    assert (res.first_day, res.last_day) == (None, None)
