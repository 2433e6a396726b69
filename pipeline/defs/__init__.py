"""Dagster definitions of the ledger, one folder per domain (ingest, reconcile, insights, alerts)."""
