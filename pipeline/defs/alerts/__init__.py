"""Alert evaluation in Dagster: `marts.budget_status` and `marts.alerts`, re-evaluated after
every successful ledger run."""
