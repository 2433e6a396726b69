"""Alerts need no schedule or sensor of their own: their assets are part of the `ledger_daily`
job (pipeline/defs/reconcile/schedules.py), so every `byok-ledger run` and every scheduled run
evaluates and delivers alerts right after rebuilding the marts, in the same run.

`byok-ledger alerts` re-evaluates on demand, outside Dagster."""
