"""Insights: cost per accepted output, policy audit, routing health."""
