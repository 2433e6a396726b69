"""The ledger pipeline: a Dagster code location (`pipeline.definitions`) that loads request logs
and provider invoices into DuckDB, reconciles them and builds the `marts` schema (docs/marts.md)."""
