"""The alert SQL files (`sql/alerts/<name>.sql`) by name, through the pipeline's one SQL
loader; every query is parameterised with `$name` placeholders, never formatted with data."""

from __future__ import annotations

from pipeline.sql import load_sql


def sql(name: str) -> str:
    """The text of `sql/alerts/<name>.sql` (one statement)."""
    return load_sql(f"alerts/{name}")
