"""Readers for the pipeline's input files: request logs and outcome events (docs/log-contract.md), OpenRouter
generation records, provider invoices and the platform statement (docs/pipeline.md)."""
