"""Loads the SQL files under `sql/<layer>/<name>.sql` by name and runs them with named `$name`
parameters. User data only ever reaches SQL as a bound parameter, never through formatting."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@functools.cache
def load_sql(name: str) -> str:
    """The text of `sql/<name>.sql`, e.g. `load_sql("marts/split_billing_daily")`."""
    path = SQL_DIR / f"{name}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"SQL file not found: {path}") from None


def _statements(text: str) -> list[str]:
    """Split a file on `;` at line ends (our SQL files never put `;` inside strings)."""
    out, buf = [], []
    for line in text.splitlines():
        stripped = line.split("--", 1)[0].rstrip()
        buf.append(line)
        if stripped.endswith(";"):
            out.append("\n".join(buf))
            buf = []
    rest = "\n".join(buf).strip()
    if rest and any(ln.split("--", 1)[0].strip() for ln in buf):
        out.append(rest)
    return out


def run_sql(
    conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Run every statement of `sql/<name>.sql`, binding only the `$params` each one uses."""
    params = dict(params or {})
    for stmt in _statements(load_sql(name)):
        used = set(_PARAM.findall(stmt))
        missing = used - params.keys()
        if missing:
            raise KeyError(f"sql/{name}.sql needs parameter(s) {sorted(missing)}")
        # Fetch so no result stays pending on the connection (duckdb 2 refuses new work).
        conn.execute(stmt, {k: params[k] for k in used} if used else None).fetchall()
    return conn
