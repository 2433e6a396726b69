"""A late invoice correction for a day outside the run window is picked up by the next plain
`byok-ledger run` (in a fresh process, as a user runs it) and by the daily schedule's run
request; a run with no new input re-parses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

from pipeline_testkit import REPO, Ledger, request
from test_invoices_hostile import MAR_2, bucket, dumps, oai_page, oai_result
from test_pipeline_cli import _run

DAY = 86400


def _three_days(led: Ledger) -> None:
    """Logs on 03-02 and 03-03; OpenAI pages for 03-01, 03-02 and 03-03."""
    for i, day in enumerate(("2026-03-02", "2026-03-03")):
        led.write_requests(
            day, [request(f"{day}-a", f"{day}T08:00:00.000Z", provider_usd="1.50", fee="0.02")]
        )
        del i
    (led.invoices / "openai").mkdir()
    for i, day in enumerate(("2026-03-01", "2026-03-02", "2026-03-03")):
        page = oai_page(bucket(MAR_2 + (i - 1) * DAY, MAR_2 + i * DAY))
        (led.invoices / "openai" / f"costs_{day}.json").write_text(dumps(page))


def _statuses_since(led: Ledger, after: int) -> list[str]:
    rows = led.query(
        "SELECT status FROM raw.load_manifest WHERE source = 'invoices' "
        "ORDER BY loaded_at, file OFFSET ?",
        [after],
    )
    return [s for (s,) in rows]


def _manifest_rows(led: Ledger) -> int:
    return led.query("SELECT count(*) FROM raw.load_manifest WHERE source = 'invoices'")[0][0]


def test_a_late_correction_outside_the_window_is_picked_up_by_the_next_plain_run(
    ledger: Ledger,
):
    _three_days(ledger)
    first = _run(ledger, "--start", "2026-03-01", "--end", "2026-03-03")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "invoices changed" not in first.stdout
    # A -4.20 correction for 03-01 arrives as a re-fetch of that day's page.
    refetch = oai_page(
        bucket(
            MAR_2 - DAY,
            MAR_2,
            results=[oai_result(1.5), oai_result(-4.2, line_item="credit adjustment")],
        )
    )
    (ledger.invoices / "openai" / "costs_2026-03-01_refetch.json").write_text(dumps(refetch))
    # A plain run covers the days with logs (03-02..03-03) and adds 03-01 for the invoice.
    second = _run(ledger)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "invoices changed: re-materializing 2026-03-01" in second.stdout
    # ... and the closing summary names them again, after the day table.
    assert second.stdout.rstrip().splitlines()[-1] == (
        "re-materialized because their invoices changed: 2026-03-01"
    )
    assert "3 day(s) 2026-03-01..2026-03-03" in second.stdout
    assert ledger.query(
        "SELECT sum(BilledCost) FROM staging.invoice_lines WHERE day = DATE '2026-03-01'"
    ) == [(Decimal("-2.7"),)]
    assert ledger.query(
        "SELECT count(*) FROM marts.non_usage_charges WHERE day = DATE '2026-03-01'"
    ) == [(1,)]
    assert ledger.query("SELECT count(*) FROM raw.invoice_pending_days") == [(0,)]
    # A third run with no new input is skipped without starting Dagster; forced, it parses
    # nothing and widens nothing.
    skipped = _run(ledger)
    assert skipped.returncode == 0 and "nothing changed since run" in skipped.stdout
    before = _manifest_rows(ledger)
    third = _run(ledger, "--force")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "invoices changed" not in third.stdout
    assert "2 day(s) 2026-03-02..2026-03-03" in third.stdout
    new = _statuses_since(ledger, before)
    assert new and set(new) == {"unchanged"}


SCHEDULE = """
import datetime as dt, json, sys
import dagster as dg
from pipeline import settings
settings.activate(settings.settings_for(sys.argv[1], dt.date(2026, 2, 1), dt.date(2026, 3, 10)))
from pipeline.defs.reconcile.schedules import ledger_daily_schedule
ctx = dg.build_schedule_context(
    scheduled_execution_time=dt.datetime(2026, 3, 10, 2, 30, tzinfo=dt.UTC))
print(json.dumps(ledger_daily_schedule(ctx).tags))
"""


def _schedule_tags(led: Ledger) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", SCHEDULE, str(led.config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_schedule_widens_its_window_to_a_changed_earlier_day(ledger: Ledger):
    _three_days(ledger)
    text = ledger.config.read_text()
    ledger.config.write_text(text.replace("rerun_window_days: 7", "rerun_window_days: 2"))
    assert _run(ledger, "--start", "2026-03-01", "--end", "2026-03-03").returncode == 0
    tags = _schedule_tags(ledger)
    start, end = (tags[f"dagster/asset_partition_range_{k}"] for k in ("start", "end"))
    assert (start, end) == ("2026-03-08", "2026-03-09")  # nothing changed: the window only
    refetch = oai_page(bucket(MAR_2 - DAY, MAR_2, results=[oai_result(1.25)]))
    (ledger.invoices / "openai" / "costs_2026-03-01_refetch.json").write_text(dumps(refetch))
    tags = _schedule_tags(ledger)
    start, end = (tags[f"dagster/asset_partition_range_{k}"] for k in ("start", "end"))
    assert (start, end) == ("2026-03-01", "2026-03-09")
