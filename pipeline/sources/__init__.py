"""Readers for the pipeline's input files: request logs and outcome events (SPEC §6), OpenRouter
generation records, provider invoices and the platform statement (SPEC §7)."""
