"""Re-runs give the same marts; a crash in the middle of a load leaves the previous state."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from pipeline_testkit import STAGING_MINI, Ledger, materialize, outcome, request

import pipeline.loads as loads
from routing_core.config import load_config


def _two_more_days(led: Ledger) -> None:
    for day in ("2026-03-03", "2026-03-04"):
        led.write_requests(
            day,
            [
                request(f"{day}-a", f"{day}T08:00:00.000Z", provider_usd="0.40", fee="0.02"),
                request(
                    f"{day}-b",
                    f"{day}T09:00:00.000Z",
                    **STAGING_MINI,
                    provider_usd="0.10",
                    fee="0.005",
                ),
            ],
        )
        led.write_outcomes(
            day, [outcome(f"{day}-e", f"{day}T08:01:00.000Z", True, request_id=f"{day}-a")]
        )


def test_running_a_day_twice_gives_identical_tables(acme_day: Ledger):
    assert materialize(acme_day, day="2026-03-02").success
    first = acme_day.snapshot()
    assert materialize(acme_day, day="2026-03-02").success
    assert acme_day.snapshot() == first
    assert first["marts.split_billing_daily"]  # not trivially empty


def test_a_range_then_one_day_inside_it_gives_identical_tables(acme_day: Ledger):
    _two_more_days(acme_day)
    assert materialize(acme_day, start="2026-03-01", end="2026-03-04").success
    ranged = acme_day.snapshot()
    assert materialize(acme_day, day="2026-03-03").success
    assert acme_day.snapshot() == ranged
    # ...and day-by-day runs build the same tables as the single range run.
    acme_day.duckdb.unlink()
    for d in ("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"):
        assert materialize(acme_day, day=d).success
    assert acme_day.snapshot() == ranged


MAR_2 = loads.DayRange(dt.date(2026, 3, 2), dt.date(2026, 3, 2))


def _crash_at(monkeypatch: pytest.MonkeyPatch, statement: str) -> None:
    """Make the loads die when they reach the SQL file `statement`, inside their transaction."""
    real = loads.run_sql

    def crash(conn, name, params=None):
        if name == statement:
            raise RuntimeError("simulated crash mid-load")
        return real(conn, name, params)

    monkeypatch.setattr(loads, "run_sql", crash)


def test_crash_inside_the_requests_transaction_keeps_the_previous_state(
    acme_day: Ledger, monkeypatch: pytest.MonkeyPatch
):
    cfg, days = load_config(acme_day.config), MAR_2
    assert materialize(acme_day, day="2026-03-02").success
    before = acme_day.snapshot()

    # New data arrives, then the process dies after the DELETE and INSERT of staging.requests
    # but before the transaction commits (while writing the manifest and rejected records).
    acme_day.write_requests(
        "2026-03-02", [request("late-1", "2026-03-02T20:00:00.000Z")], name="router-9"
    )
    from pipeline.sources import accounting

    def crash(*_args, **_kwargs):
        raise RuntimeError("simulated crash mid-load")

    monkeypatch.setattr(accounting, "_write_manifest", crash)
    conn = duckdb.connect(str(acme_day.duckdb))
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            loads.load_requests(conn, cfg, days)
    finally:
        conn.close()
    assert acme_day.snapshot() == before


def test_crash_inside_the_split_billing_transaction_keeps_the_previous_state(
    acme_day: Ledger, monkeypatch: pytest.MonkeyPatch
):
    cfg, days = load_config(acme_day.config), MAR_2
    assert materialize(acme_day, day="2026-03-02").success
    before = acme_day.snapshot()
    _crash_at(monkeypatch, "marts/unattributed_usage")  # after split_billing_daily was rewritten
    conn = duckdb.connect(str(acme_day.duckdb))
    try:
        # Change an input so that a committed rebuild would differ from the previous marts.
        conn.execute("DELETE FROM intermediate.request_groups WHERE provider = 'openai'")
        with pytest.raises(RuntimeError, match="simulated crash"):
            loads.build_split_billing(conn, cfg, days)
    finally:
        conn.close()
    after = acme_day.snapshot()
    assert after["marts.split_billing_daily"] == before["marts.split_billing_daily"]
    assert after["marts.unattributed_usage"] == before["marts.unattributed_usage"]


def test_a_broken_invoice_file_is_refused_named_and_changes_nothing_else(acme_day: Ledger):
    assert materialize(acme_day, day="2026-03-02").success
    before = acme_day.snapshot()
    broken = acme_day.invoices / "anthropic" / "cost_report_2026-03-02_b.json"
    broken.write_text(
        '{"data": [{"starting_at": "2026-03-02T00:00:00Z", "results": [\n'
        '{"amount": "12", "currency": "USD", "model": "m"},\n{"amount": '
    )
    result = materialize(acme_day, day="2026-03-02")
    assert result.success  # one unreadable invoice does not stop the run
    (check,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "invoice_files_readable"
    ]
    assert not check.passed
    assert f"truncated at {broken}:3: invalid JSON" in check.metadata["refused"].value
    assert acme_day.query(
        "SELECT f.status, lines, CAST(day AS VARCHAR) FROM raw.invoice_files f "
        "JOIN raw.invoice_file_coverage USING (file) WHERE file = ?",
        [str(broken)],
    ) == [("refused", 3, "2026-03-02")]
    after = acme_day.snapshot()
    # None of its lines counts (not even the complete $0.12 one before the cut).
    for table in ("staging.invoice_lines", "marts.split_billing_daily"):
        assert after[table] == before[table]
