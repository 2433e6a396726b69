"""Re-fetched exports supersede instead of adding, identical copies count once, multi-day
buckets are spread exactly, and only new or changed invoice files are parsed: removed files
stop counting, and every already-built day a changed file touches is reported for
re-materialization (by `changed_invoice_days`, the run and the daily schedule)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_testkit import Ledger
from test_invoices_hostile import MAR_2, bucket, dumps, latest_manifest, load, oai_page, oai_result

from pipeline.loads import DayRange
from pipeline.sources.invoice_store import changed_invoice_days, widen_for_invoices
from pipeline.sources.invoices import day_parts, split_exact
from routing_core.config import load_config

DAY = 86400
MAR = DayRange(dt.date(2026, 3, 1), dt.date(2026, 3, 4))


def write(led: Ledger, name: str, doc: object, folder: str = "openai") -> Path:
    path = led.invoices / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(doc))
    return path


def billed(led: Ledger, day: str | None = None) -> Decimal | None:
    where = f"WHERE day = DATE '{day}'" if day else ""
    return led.query(f"SELECT sum(BilledCost) FROM staging.invoice_lines {where}")[0][0]


def identity_holds(led: Ledger) -> bool:
    return all(
        lines == loaded + dups + quar + oos
        for _s, _r, lines, loaded, dups, quar, oos in latest_manifest(led).values()
    )


# --------------------------------------------------------------------------- supersede


def test_a_refetch_with_a_changed_amount_replaces_the_first_fetch(ledger: Ledger):
    first = write(ledger, "costs_2026-03-02.json", oai_page(bucket()))
    load(ledger, MAR)
    assert billed(ledger) == Decimal("1.5")
    later = write(
        ledger, "costs_2026-03-02_refetch.json", oai_page(bucket(results=[oai_result(1.7)]))
    )
    stats = load(ledger, MAR)
    assert stats["parsed"] == 1
    assert billed(ledger) == Decimal("1.7")  # replaced, not 3.2
    assert ledger.query(
        "SELECT x_SupersededBy, x_IdenticalCopy FROM raw.invoice_lines WHERE x_SourceFile = ?",
        [str(first)],
    ) == [(str(later), False)]
    man = latest_manifest(ledger)
    assert man[first.name][:1] + man[first.name][2:6] == ("unchanged", 1, 0, 1, 0)
    assert man[later.name][:1] + man[later.name][2:6] == ("loaded", 1, 1, 0, 0)
    assert identity_holds(ledger)
    # The later file disappears: the first fetch counts again.
    later.unlink()
    stats = load(ledger, MAR)
    assert stats["removed"] == 1 and billed(ledger) == Decimal("1.5")
    assert latest_manifest(ledger)[later.name][0] == "removed"
    assert identity_holds(ledger)


def test_an_identical_refetch_counts_once_as_a_duplicate(ledger: Ledger):
    write(ledger, "a/costs.json", oai_page(bucket()))
    copy = write(ledger, "b/costs.json", oai_page(bucket()))
    load(ledger, MAR)
    assert billed(ledger) == Decimal("1.5")
    rows = ledger.query(
        "SELECT x_SourceFile, x_SupersededBy, x_IdenticalCopy FROM raw.invoice_lines ORDER BY 1"
    )
    assert [(Path(f).parent.name, w, i) for f, w, i in rows] == [
        ("a", str(copy), True),  # b/ sorts after a/: the later fetch
        ("b", None, None),
    ]
    dups = {
        Path(f).parent.name: d
        for f, d in ledger.query("SELECT file, duplicates FROM raw.invoice_files")
    }
    assert dups == {"a": 1, "b": 0}
    assert identity_holds(ledger)


def test_a_refetch_that_drops_one_line_item_supersedes_only_the_items_it_has(ledger: Ledger):
    two = [oai_result(1.5), oai_result(0.25, line_item="gpt-4.1-2025-04-14, output")]
    write(ledger, "costs_1.json", oai_page(bucket(results=two)))
    write(ledger, "costs_2.json", oai_page(bucket(results=[oai_result(1.75)])))
    load(ledger, MAR)
    assert billed(ledger) == Decimal("2.00")  # 1.75 (re-fetched input) + 0.25 (output, kept)


def test_statement_rows_refetched_are_superseded_too(ledger: Ledger):
    head = "date,model,provider_name,usage,byok_usage_inference,byok_requests,requests\n"
    (ledger.invoices / "_platform").mkdir()
    (ledger.invoices / "_platform" / "activity_1.csv").write_text(
        head + "2026-03-02,openai/gpt-4.1,OpenAI,0.2,4.0,2,2\n"
    )
    (ledger.invoices / "_platform" / "activity_2.csv").write_text(
        head + "2026-03-02,openai/gpt-4.1,OpenAI,0.25,4.0,2,2\n"
    )
    load(ledger, MAR)
    assert billed(ledger, "2026-03-02") == Decimal("0.25")


# --------------------------------------------------------------------------- exact spread


def test_a_two_day_bucket_is_spread_exactly_never_on_its_first_day_only(ledger: Ledger):
    start = MAR_2 + 12 * 3600  # 2026-03-02T12:00Z -> 2026-03-04T00:00Z: 12 h + 24 h
    page = oai_page(bucket(start, MAR_2 + 2 * DAY, results=[oai_result("@")]))
    (ledger.invoices / "openai").mkdir()
    (ledger.invoices / "openai" / "c.json").write_text(dumps(page).replace('"@"', "1.000000001"))
    load(ledger, MAR)
    rows = ledger.query(
        "SELECT CAST(day AS VARCHAR), BilledCost, ChargePeriodStart, ChargePeriodEnd, "
        "x_SourceLocator FROM staging.invoice_lines ORDER BY day"
    )
    assert [(d, c) for d, c, *_ in rows] == [
        ("2026-03-02", Decimal("0.333333334")),  # 1/3 = 0.3333333336..: the remainder's nano
        ("2026-03-03", Decimal("0.666666667")),
    ]
    assert sum(c for _, c, *_ in rows) == Decimal("1.000000001")
    assert rows[0][2:4] == (dt.datetime(2026, 3, 2, 12), dt.datetime(2026, 3, 3))
    assert rows[1][4] == "data[0].results[0] (day 2 of 2)"
    # Both days are covered by the page; the day the bucket ends on (exclusive) is not.
    assert ledger.query("SELECT CAST(day AS VARCHAR) FROM staging.invoice_coverage ORDER BY 1") == [
        ("2026-03-02",),
        ("2026-03-03",),
    ]
    # One input line (the result), two rows after the spread: the identity counts lines.
    assert latest_manifest(ledger)["c.json"][2:6] == (1, 1, 0, 0)


@given(
    st.integers(-(10**20), 10**20),
    st.lists(st.integers(1, 86_400_000_000), min_size=1, max_size=40),
)
def test_split_exact_sums_to_the_nanodollar_and_each_part_is_within_one(nanos, weights):
    amount = Decimal(nanos).scaleb(-9)
    parts = split_exact(amount, weights)
    assert sum(parts) == amount
    total = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        exact = Fraction(nanos * w, total)
        assert abs(Fraction(int(part.scaleb(9))) - exact) < 1


def test_day_parts_cut_at_utc_midnights():
    parts = day_parts(dt.datetime(2026, 10, 5, 12), dt.datetime(2026, 10, 7))
    assert parts == [
        (dt.datetime(2026, 10, 5, 12), dt.datetime(2026, 10, 6)),
        (dt.datetime(2026, 10, 6), dt.datetime(2026, 10, 7)),
    ]


# --------------------------------------------------------------------------- incremental


def test_a_rerun_with_nothing_new_parses_nothing_and_does_not_even_hash(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    for i in range(3):
        write(ledger, f"costs_{i}.json", oai_page(bucket(MAR_2 + i * DAY, MAR_2 + (i + 1) * DAY)))
    first = load(ledger, MAR)
    assert (first["parsed"], first["unchanged"]) == (3, 0)
    import pipeline.sources.invoice_store as store

    def no_hash(path: Path) -> str:
        raise AssertionError(f"{path} hashed although its size and mtime are unchanged")

    monkeypatch.setattr(store, "_sha256", no_hash)
    again = load(ledger, MAR)
    assert (again["parsed"], again["unchanged"], again["rows"]) == (0, 3, first["rows"])
    assert {m[0] for m in latest_manifest(ledger).values()} == {"unchanged"}
    assert identity_holds(ledger)


def test_a_touched_file_with_the_same_bytes_is_hashed_but_not_parsed(ledger: Ledger):
    path = write(ledger, "costs.json", oai_page(bucket()))
    load(ledger, MAR)
    os.utime(path, ns=(1, 1))
    assert load(ledger, MAR)["parsed"] == 0
    assert ledger.query("SELECT mtime_ns FROM raw.invoice_files") == [(1,)]


def test_a_late_correction_outside_the_window_is_reported_for_rematerialization(
    ledger: Ledger,
):
    cfg = load_config(ledger.config)
    write(ledger, "costs_0301.json", oai_page(bucket(MAR_2 - DAY, MAR_2)))
    write(ledger, "costs_0302.json", oai_page(bucket()))
    load(ledger, DayRange(dt.date(2026, 3, 1), dt.date(2026, 3, 2)))
    with duckdb.connect(str(ledger.duckdb)) as conn:
        assert changed_invoice_days(conn, cfg) == []
    # A re-fetch of 03-01 with a -4.20 correction arrives while only 03-02 is run.
    write(
        ledger,
        "costs_0301_refetch.json",
        oai_page(
            bucket(
                MAR_2 - DAY, MAR_2, results=[oai_result(1.5), oai_result(-4.2, line_item="credit")]
            )
        ),
    )
    assert widen_for_invoices(cfg, dt.date(2026, 3, 2), dt.date(2026, 3, 2)) == (
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 2),
        [dt.date(2026, 3, 1)],
    )
    # Inside the range it is named too (the run says which days' invoices changed).
    assert widen_for_invoices(cfg, dt.date(2026, 3, 1), dt.date(2026, 3, 5)) == (
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 5),
        [dt.date(2026, 3, 1)],
    )
    with duckdb.connect(str(ledger.duckdb)) as conn:
        assert changed_invoice_days(conn, cfg) == [dt.date(2026, 3, 1)]  # parsed once, above
        assert conn.execute(
            "SELECT count(*) FROM raw.load_manifest WHERE status = 'loaded' "
            "AND file LIKE '%refetch%'"
        ).fetchone() == (1,)
    # Building 03-02 alone does not clear 03-01; building 03-01 does.
    load(ledger, DayRange(dt.date(2026, 3, 2), dt.date(2026, 3, 2)))
    with duckdb.connect(str(ledger.duckdb)) as conn:
        assert changed_invoice_days(conn, cfg) == [dt.date(2026, 3, 1)]
    load(ledger, DayRange(dt.date(2026, 3, 1), dt.date(2026, 3, 1)))
    assert billed(ledger, "2026-03-01") == Decimal("-2.7")
    with duckdb.connect(str(ledger.duckdb)) as conn:
        assert changed_invoice_days(conn, cfg) == []
    # A day never built is not pending: a run of it builds it from the current files anyway.
    write(ledger, "costs_0310.json", oai_page(bucket(MAR_2 + 8 * DAY, MAR_2 + 9 * DAY)))
    with duckdb.connect(str(ledger.duckdb)) as conn:
        assert changed_invoice_days(conn, cfg) == []


def test_a_removed_file_marks_its_days_pending_and_stops_counting(ledger: Ledger):
    cfg = load_config(ledger.config)
    path = write(ledger, "costs.json", oai_page(bucket()))
    load(ledger, MAR)
    path.unlink()
    with duckdb.connect(str(ledger.duckdb)) as conn:
        assert changed_invoice_days(conn, cfg) == [dt.date(2026, 3, 2)]
    stats = load(ledger, MAR)
    assert (stats["rows"], stats["files"]) == (0, 0)
    assert ledger.query("SELECT count(*) FROM raw.invoice_lines") == [(0,)]
    assert ledger.query("SELECT count(*) FROM staging.invoice_coverage") == [(0,)]


def test_a_symlink_leading_outside_the_invoices_folder_is_refused(ledger: Ledger, tmp_path: Path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text(dumps(oai_page(bucket())))
    (ledger.invoices / "openai").mkdir()
    (ledger.invoices / "openai" / "costs.json").symlink_to(outside)
    stats = load(ledger, MAR)
    assert (stats["refused"], stats["rows"]) == (1, 0)
    assert latest_manifest(ledger)["costs.json"][1].startswith("unknown_file at ")


def test_a_file_that_could_not_be_hashed_is_retried_on_the_next_load(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    # Root (the test machine) reads every file, so the permission error is injected.
    import pipeline.sources.invoice_store as store

    write(ledger, "costs.json", oai_page(bucket()))

    def denied(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    with monkeypatch.context() as m:
        m.setattr(store, "_sha256", denied)
        load(ledger, MAR)
    assert ledger.query("SELECT fingerprint FROM raw.invoice_files") == [("unreadable",)]
    assert load(ledger, MAR)["parsed"] == 1  # size and mtime unchanged, but retried
    assert ledger.query("SELECT length(fingerprint) FROM raw.invoice_files") == [(64,)]
    assert load(ledger, MAR)["parsed"] == 0


# --------------------------------------------------------------------------- property

CORRUPTIONS = {
    "cut": lambda text: text[: len(text) // 2],
    "nan": lambda text: text.replace('"value": ', '"value": NaN, "x": ', 1),
    "eur": lambda text: text.replace('"usd"', '"eur"', 1),
    "bool": lambda text: text.replace('"value": ', '"value": true, "x": ', 1),
}


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.lists(
        st.tuples(
            st.integers(0, 3),  # day offset from 2026-03-01
            st.lists(st.integers(-(10**12), 10**14), min_size=1, max_size=4),  # nanodollars
            st.sampled_from([None, *CORRUPTIONS]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_random_mixes_of_good_and_hostile_pages_load_exactly_the_good_ones(
    tmp_path_factory: pytest.TempPathFactory, files
):
    led = Ledger(tmp_path_factory.mktemp("mix"))
    (led.invoices / "openai").mkdir()
    expected = Decimal(0)
    for i, (day, amounts, corruption) in enumerate(files):
        start = MAR_2 + (day - 1) * DAY
        results = [
            oai_result("@", project_id=f"p{i}", line_item=f"gpt-4.1-2025-04-14, t{j}")
            for j in range(len(amounts))
        ]
        text = dumps(oai_page(bucket(start, start + DAY, results=results)))
        for n in amounts:
            text = text.replace('"@"', str(Decimal(n).scaleb(-9)), 1)
        if corruption:
            text = CORRUPTIONS[corruption](text)
        else:
            expected += sum(Decimal(n).scaleb(-9) for n in amounts)
        (led.invoices / "openai" / f"costs_{i}.json").write_text(text)
    stats = load(led, MAR)
    assert stats["refused"] == sum(1 for *_, c in files if c)
    assert (billed(led) or Decimal(0)) == expected
    assert identity_holds(led)
    assert load(led, MAR)["parsed"] == 0


def test_an_anthropic_bucket_with_an_offset_is_spread_over_its_utc_days(ledger: Ledger):
    # 00:00+05:00 is 19:00 UTC the day before: 5 h on 03-01, 19 h on 03-02 ($0.24 = 5:19).
    doc = {
        "data": [
            {
                "starting_at": "2026-03-02T00:00:00+05:00",
                "ending_at": "2026-03-03T00:00:00+05:00",
                "results": [{"amount": "24", "currency": "USD", "model": "claude-sonnet-4"}],
            }
        ]
    }
    write(ledger, "report.json", doc, folder="anthropic")
    load(ledger, MAR)
    assert ledger.query(
        "SELECT CAST(day AS VARCHAR), BilledCost FROM staging.invoice_lines ORDER BY day"
    ) == [("2026-03-01", Decimal("0.05")), ("2026-03-02", Decimal("0.19"))]


def test_a_loaded_file_replaced_by_a_symlink_outside_is_refused_not_kept(
    ledger: Ledger, tmp_path: Path
):
    path = write(ledger, "costs.json", oai_page(bucket()))
    load(ledger, MAR)
    outside = tmp_path / "same.json"
    outside.write_bytes(path.read_bytes())
    st_ = path.stat()
    os.utime(outside, ns=(st_.st_atime_ns, st_.st_mtime_ns))  # same size, same mtime
    path.unlink()
    path.symlink_to(outside)
    stats = load(ledger, MAR)
    assert (stats["refused"], stats["rows"]) == (1, 0)
    # A symlink that leads nowhere: the file is gone, its lines stop counting.
    outside.unlink()
    stats = load(ledger, MAR)
    assert (stats["removed"], stats["refused"], stats["rows"]) == (1, 0, 0)
    assert latest_manifest(ledger)["costs.json"][0] == "removed"
