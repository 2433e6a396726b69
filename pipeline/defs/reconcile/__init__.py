"""Reconcile: logs vs invoices, allocation of billed cost, split billing."""
