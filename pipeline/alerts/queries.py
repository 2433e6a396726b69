"""Reads the alert SQL files (`sql/alerts/<name>.sql`) by name; every query is parameterised
with `$name` placeholders, never formatted with data."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql" / "alerts"


@cache
def sql(name: str) -> str:
    """The text of `sql/alerts/<name>.sql`."""
    path = SQL_DIR / f"{name}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"missing SQL file {path}") from None
