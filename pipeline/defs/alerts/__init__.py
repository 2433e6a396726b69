"""Alert evaluation in Dagster: `marts.budget_status` and `marts.alerts`, daily-partitioned
assets of the ledger graph, evaluated and delivered in the same run that rebuilt the marts."""
