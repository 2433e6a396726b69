"""Request-log ingestion: malformed lines quarantined with file and line while the good lines
load, a torn last line tolerated, at-least-once duplicates dropped once (also across files and
day folders), and the blocking rejected-rate check."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal

from pipeline_testkit import FIXTURES, Ledger, materialize, request


def _bad_file(led: Ledger, day: str = "2026-03-02") -> str:
    dest = led.logs / "requests" / f"dt={day}" / "router-a.jsonl"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "logs" / "requests_with_bad_lines.jsonl", dest)
    return str(dest)


def _checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_malformed_lines_are_quarantined_with_file_and_line_and_good_lines_load(ledger: Ledger):
    path = _bad_file(ledger)
    result = materialize(ledger, day="2026-03-02")
    assert ledger.query("SELECT request_id FROM staging.requests ORDER BY 1") == [
        ("good-1",),
        ("good-2",),
    ]
    rejected = ledger.query(
        "SELECT file, line, torn, reason, error FROM raw.rejected_records ORDER BY line"
    )
    assert [(f, line, torn, reason) for f, line, torn, reason, _ in rejected] == [
        (path, 2, False, "not_json"),
        (path, 3, False, "bad_value:cost.provider_usd"),
        (path, 5, False, "missing:request_id"),
        (path, 6, False, "bad_value:status"),
        (path, 8, True, "torn_line"),
    ]
    errors = [e for *_, e in rejected]
    assert "not valid JSON" in errors[0]
    assert "cost.provider_usd" in errors[1]
    assert "request_id" in errors[2]
    assert "status" in errors[3]
    assert errors[4].startswith("torn last line")
    # the raw text is kept: the bad amount is visible
    assert (
        "twelve dollars"
        in ledger.query("SELECT raw_text FROM raw.rejected_records WHERE line = 3")[0][0]
    )
    assert ledger.query(
        "SELECT lines_read, rejected, torn, duplicates_dropped "
        "FROM raw.load_stats WHERE source = 'requests'"
    ) == [(8, 5, 1, 1)]
    assert ledger.query(
        "SELECT file, lines, loaded, duplicates, quarantined, status FROM raw.load_manifest "
        "WHERE source = 'requests'"
    ) == [(path, 8, 2, 1, 5, "loaded")]
    # 4 bad lines of 8 is far above max_rejected_pct (1%): the blocking check stops the run
    # before the marts are rebuilt.
    assert _checks(result)["rejected_rate_under_threshold"] is False
    (rate,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "rejected_rate_under_threshold"
    ]
    assert f"{path} (4)" in rate.description  # the check names the offending file
    assert _checks(result)["every_request_line_accounted_for"] is True
    assert not result.success
    assert ledger.query("SELECT count(*) FROM marts.split_billing_daily") == [(0,)]


def test_a_torn_last_line_alone_does_not_fail_the_run(ledger: Ledger):
    good = [request(f"q{i}", "2026-03-02T09:00:00.000Z", provider_usd="0.01") for i in range(3)]
    ledger.write_requests("2026-03-02", good, tail='{"schema_version": 1, "request_id": "q9", "t')
    result = materialize(ledger, day="2026-03-02")
    assert result.success
    assert ledger.query("SELECT count(*) FROM staging.requests") == [(3,)]
    assert ledger.query("SELECT line, torn FROM raw.rejected_records") == [(4, True)]


def test_duplicates_dropped_once_across_files_and_day_folders(ledger: Ledger):
    a = request("dup-1", "2026-03-02T23:59:59.000Z", provider_usd="1.00")
    b = request("only-2", "2026-03-02T10:00:00.000Z", provider_usd="2.00")
    c = request("only-3", "2026-03-03T00:00:01.000Z", provider_usd="3.00")
    ledger.write_requests("2026-03-02", [a, b, a], name="router-1")
    ledger.write_requests("2026-03-02", [a], name="router-2")
    # A shipper re-sent dup-1 the next day, into the next day's folder.
    ledger.write_requests("2026-03-03", [a, c], name="router-1")

    materialize(ledger, start="2026-03-02", end="2026-03-03")
    together = ledger.query("SELECT day, request_id, provider_usd FROM staging.requests ORDER BY 2")
    assert together == [
        (dt.date(2026, 3, 2), "dup-1", Decimal("1")),
        (dt.date(2026, 3, 2), "only-2", Decimal("2")),
        (dt.date(2026, 3, 3), "only-3", Decimal("3")),
    ]
    # Day by day, in either order, the result is the same.
    for order in (["2026-03-03", "2026-03-02"], ["2026-03-02", "2026-03-03"]):
        ledger.duckdb.unlink()
        for d in order:
            materialize(ledger, day=d)
        assert (
            ledger.query("SELECT day, request_id, provider_usd FROM staging.requests ORDER BY 2")
            == together
        )
    assert ledger.query("SELECT sum(provider_estimated_usd) FROM marts.split_billing_daily") == [
        (Decimal("6"),)
    ]


def test_outcomes_with_bad_lines_are_quarantined(ledger: Ledger):
    from pipeline_testkit import outcome

    ledger.write_requests("2026-03-02", [request("r1", "2026-03-02T10:00:00.000Z")])
    path = ledger.write_outcomes(
        "2026-03-02",
        [
            outcome("e1", "2026-03-02T10:01:00.000Z", True, request_id="r1"),
            {"schema_version": 1, "event_id": "e2", "ts": "2026-03-02T10:02:00.000Z"},
        ],
    )
    materialize(ledger, day="2026-03-02")
    assert ledger.query("SELECT event_id FROM staging.outcomes") == [("e1",)]
    assert ledger.query("SELECT source, file, line FROM raw.rejected_records") == [
        ("outcomes", str(path), 2)
    ]


def test_one_bad_line_on_a_quiet_day_warns_and_the_run_goes_on(ledger: Ledger):
    # 1 garbled line of 11 is 9 % (> max_rejected_pct 1 %) but fewer than min_rejected_lines
    # (3): quarantined and reported as a warning, never a reason to stop the day's ledger.
    good = [request(f"q{i}", "2026-03-02T09:00:00.000Z", provider_usd="0.01") for i in range(10)]
    f = ledger.write_requests("2026-03-02", good[:5])
    with f.open("a", encoding="utf-8") as fh:
        fh.write("{not json\n" + "".join(json.dumps(r) + "\n" for r in good[5:]))
    result = materialize(ledger, day="2026-03-02")
    assert result.success
    (rate,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "rejected_rate_under_threshold"
    ]
    assert rate.passed is False and rate.severity.value == "WARN"
    assert "fewer than pipeline.min_rejected_lines (3)" in rate.description
    assert ledger.query("SELECT count(*) FROM staging.requests") == [(10,)]
    assert ledger.query("SELECT line, reason FROM raw.rejected_records") == [(6, "not_json")]
    assert ledger.query("SELECT count(*) FROM marts.split_billing_daily")[0][0] > 0
