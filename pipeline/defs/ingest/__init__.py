"""Ingest: request logs, outcome events, invoices and the platform statement into staging."""
