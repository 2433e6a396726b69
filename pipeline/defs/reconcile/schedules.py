"""The one job that materializes the whole ledger graph, alerts included, and its daily
schedule. Each tick re-runs a trailing window (`pipeline.rerun_window_days`, default 7) as ONE
run over the day range, so late invoices and corrections land in the days they belong to, and
the alerts of the rebuilt days are evaluated and delivered in that same run."""

import datetime as dt

import dagster as dg

from pipeline.defs.metadata import RANGE_END, RANGE_START
from pipeline.defs.partitions import daily_partitions
from pipeline.settings import current, get_config

LEDGER_GROUPS = ("ingest", "reconcile", "insights")
ALERT_GROUPS = ("alerts",)

ledger_job = dg.define_asset_job(
    "ledger_daily",
    selection=dg.AssetSelection.groups(*LEDGER_GROUPS, *ALERT_GROUPS),
    description="Every ledger asset (staging, reconciliation, marts), then budget, anomaly and "
    "reconciliation alerts (evaluated and delivered), with their checks.",
    # One process, one step at a time, wherever the run starts (run, daemon, UI): the DuckDB
    # file has one writer, and a process per step would pay Dagster's start ~20 times.
    executor_def=dg.in_process_executor,
)


def rerun_window(today: dt.date, window_days: int, first_day: dt.date) -> tuple[dt.date, dt.date]:
    """Days to (re)build on `today`: yesterday and the `window_days - 1` days before it."""
    end = today - dt.timedelta(days=1)
    start = max(end - dt.timedelta(days=max(window_days, 1) - 1), first_day)
    return start, end


@dg.schedule(job=ledger_job, cron_schedule="30 2 * * *", execution_timezone="UTC")
def ledger_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """02:30 UTC: rebuild the trailing window ending yesterday, widened to every earlier day
    whose invoices changed since it was built (a late correction is never missed)."""
    from pipeline.sources.invoice_store import widen_for_invoices

    today = context.scheduled_execution_time.astimezone(dt.UTC).date()
    cfg = get_config(current().config_path)
    first = daily_partitions.start.date()
    start, end = rerun_window(today, cfg.pipeline.rerun_window_days, first)
    start, end, reinvoiced = widen_for_invoices(cfg, start, end, first, end)
    if reinvoiced:
        context.log.info(f"invoices changed: re-materializing {', '.join(map(str, reinvoiced))}")
    return dg.RunRequest(
        run_key=f"ledger-{end.isoformat()}",
        tags={RANGE_START: start.isoformat(), RANGE_END: end.isoformat()},
    )
