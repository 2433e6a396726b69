"""Daily UTC partitions shared by every ledger asset, and the single-run backfill policy that
lets one run cover a range of days (the SQL handles a day range at once)."""

from __future__ import annotations

import os

import dagster as dg

START_ENV = "BYOK_LEDGER_START"
END_OFFSET_ENV = "BYOK_LEDGER_END_OFFSET"
DEFAULT_START = "2026-01-01"

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=os.environ.get(START_ENV) or DEFAULT_START,
    timezone="UTC",
    # 1 = today's (incomplete) day is a partition too, so a run can load the day so far.
    end_offset=int(os.environ.get(END_OFFSET_ENV) or 1),
)

single_run = dg.BackfillPolicy.single_run()
