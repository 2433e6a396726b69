"""Loads the SQL files under `sql/<layer>/<name>.sql` by name and runs them with named `$name`
parameters. User data only ever reaches SQL as a bound parameter, never through formatting.

The files live in `sql/` at the repository root; an installed wheel carries the same files as
package data in `pipeline/_sql/` (copied there by the build step in setup.py). `SQL_DIR` is the
checkout's folder when there is one next to this package, else the packaged copy."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb


def find_sql_dir(package_dir: Path | None = None) -> Path:
    """The folder holding `<layer>/<name>.sql`: the checkout's `sql/` beside the package when it
    exists (so edits take effect without a rebuild), else the copy shipped inside the wheel."""
    here = package_dir or Path(__file__).resolve().parent
    checkout = here.parent / "sql"
    if (checkout / "marts").is_dir():
        return checkout
    packaged = here / "_sql"
    if (packaged / "marts").is_dir():
        return packaged
    raise FileNotFoundError(
        f"no SQL files found: looked in {checkout} (a checkout) and {packaged} (an installed "
        "wheel); reinstall byok-ledger, or build the wheel from a checkout that has sql/"
    )


SQL_DIR = find_sql_dir()

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
