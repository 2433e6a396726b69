"""Alerts run after the pipeline: a sensor starts `alerts_evaluate` whenever the daily ledger
job succeeds, so budgets and anomalies always see the freshly rebuilt marts (and never run
while the ledger job holds the DuckDB file)."""

import dagster as dg

from pipeline.defs.reconcile.schedules import ledger_job

alerts_job = dg.define_asset_job(
    "alerts_evaluate",
    selection=dg.AssetSelection.groups("alerts"),
    description="Evaluate budgets and anomalies; record and deliver new alerts.",
)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[ledger_job],
    request_job=alerts_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)
def alerts_after_ledger(context: dg.RunStatusSensorContext) -> dg.RunRequest:
    """One alert evaluation per successful ledger run (the run id keeps it to one)."""
    return dg.RunRequest(run_key=f"alerts-after-{context.dagster_run.run_id}")
