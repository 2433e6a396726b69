"""Daily UTC partitions shared by every ledger asset, and the single-run backfill policy that
lets one run cover a range of days (the SQL handles a day range at once).

The first partition is `pipeline.start_date`, or the first day with request logs: the active
`pipeline.settings` decide, when the definitions load."""

from __future__ import annotations

import dagster as dg

from pipeline.settings import current

_settings = current()

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=_settings.partition_start.isoformat(),
    timezone="UTC",
    end_offset=_settings.partition_end_offset,
)

single_run = dg.BackfillPolicy.single_run()
