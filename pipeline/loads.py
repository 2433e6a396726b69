"""What each asset does, as plain functions over a DuckDB connection and a day range, so the
Dagster assets stay thin and the same code runs in tests and benches.

Every function replaces the days [start, end] of the tables it owns inside ONE transaction
(delete-then-insert): a crash anywhere leaves the previous state. Reading and parsing happen
before the transaction opens, into TEMP tables private to the connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from routing_core.config import LedgerConfig

from .reference import create_reference_tables
from .sources.invoices import invoice_table, read_invoices
from .sources.jsonl import Reject, load_jsonl
from .sources.logs import OUTCOME_SPEC, REQUEST_SPEC, day_files, outcome_files, request_files
from .sources.openrouter import SUBDIR as GENERATIONS_DIR
from .sources.openrouter import read_generations
from .sql import run_sql


@dataclass(frozen=True)
class DayRange:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> list[str]:
        n = (self.end - self.start).days
        return [(self.start + dt.timedelta(days=i)).isoformat() for i in range(n + 1)]

    @property
    def params(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}..{self.end}"


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    run_sql(conn, "schema/create_tables")
    run_sql(conn, "intermediate/create_tables")


@contextlib.contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _count(conn: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> int:
    return int(conn.execute(sql, params).fetchone()[0])


def _rejects_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _rejects AS SELECT * FROM raw.rejected_records LIMIT 0"
    )
    conn.execute("CREATE OR REPLACE TEMP TABLE _stats AS SELECT * FROM raw.load_stats LIMIT 0")


def _add_rejects(
    conn: duckdb.DuckDBPyConnection, source: str, rejects: list[Reject], fallback_day: dt.date
) -> None:
    if not rejects:
        return
    rows = []
    for r in rejects:
        day = fallback_day
        marker = "dt="
        if marker in r.file:
            with contextlib.suppress(ValueError):
                day = dt.date.fromisoformat(r.file.split(marker, 1)[1][:10])
        rows.append((day, source, r.file, r.line, r.error, r.raw_text, r.torn))
    conn.executemany("INSERT INTO _rejects VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _add_stats(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    days: DayRange,
    files: list[Path],
    table: str,
    dup_sql: str | None,
) -> None:
    """Per-day counts: files, lines read (good + rejected), rejects, torn, duplicates."""
    conn.execute(
        f"""
        INSERT INTO _stats
        WITH d AS (SELECT CAST(unnest($days) AS DATE) AS day),
        f AS (SELECT CAST(regexp_extract(f, 'dt=([0-9-]{{10}})', 1) AS DATE) AS day, count(*) n
              FROM (SELECT unnest($files) AS f) GROUP BY 1),
        g AS (SELECT day, count(*) n FROM {table} GROUP BY 1),
        r AS (SELECT day, count(*) n, count(*) FILTER (WHERE torn) t FROM _rejects
              WHERE source = $source GROUP BY 1)
        SELECT d.day, $source, coalesce(f.n, 0), coalesce(g.n, 0) + coalesce(r.n, 0),
               coalesce(r.n, 0), coalesce(r.t, 0), 0
        FROM d LEFT JOIN f USING (day) LEFT JOIN g USING (day) LEFT JOIN r USING (day)
        """,
        {"days": days.days, "files": [str(f) for f in files], "source": source},
    )
    if dup_sql:
        conn.execute(dup_sql)


# --------------------------------------------------------------------------- ingest


def load_requests(
    conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, days: DayRange
) -> dict[str, int]:
    """Request logs (+ OpenRouter generation records) of the days into staging.requests."""
    ensure_tables(conn)
    logs = cfg.logs_dir
    files = request_files(logs, days.days)
    _rejects_tables(conn)
    res = load_jsonl(conn, REQUEST_SPEC, files, "_req_in", lambda p: p.parent.name[3:])
    _add_rejects(conn, "requests", res.rejects, days.start)

    gen_files = day_files(logs, GENERATIONS_DIR, days.days, ("*.json", "*.jsonl"))
    gen_rows, gen_rejects, _ = read_generations(cfg, gen_files)
    conn.execute("CREATE OR REPLACE TEMP TABLE _gen_rows AS SELECT * FROM staging.requests LIMIT 0")
    if gen_rows:
        cols = list(gen_rows[0])
        conn.executemany(
            f"INSERT INTO _gen_rows ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(r[c] for c in cols) for r in gen_rows],
        )
    _add_rejects(conn, "openrouter_generations", gen_rejects, days.start)

    run_sql(conn, "staging/requests_prepare")
    n_new = _count(conn, "SELECT count(*) FROM _req_new")
    n_distinct = _count(conn, "SELECT count(DISTINCT request_id) FROM _req_new")
    if n_new == n_distinct:  # the common case: skip the window sort
        conn.execute("CREATE OR REPLACE TEMP TABLE _req_dedup AS SELECT * FROM _req_new")
    else:
        run_sql(conn, "staging/requests_dedup")

    _add_stats(conn, "requests", days, files, "_req_in", None)
    conn.execute(
        "UPDATE _stats SET duplicates_dropped = d.n FROM ("
        "  SELECT day, count(*) - count(DISTINCT request_id) AS n FROM _req_new "
        "  WHERE log_source = 'router' GROUP BY day) d "
        "WHERE _stats.day = d.day AND _stats.source = 'requests'"
    )
    if gen_files or gen_rejects:
        conn.execute("CREATE OR REPLACE TEMP TABLE _gen_in AS SELECT day FROM _gen_rows")
        _add_stats(conn, "openrouter_generations", days, gen_files, "_gen_in", None)

    with transaction(conn):
        run_sql(conn, "staging/requests_replace", days.params)
        for source in ("requests", "openrouter_generations"):
            run_sql(conn, "staging/rejected_replace", {**days.params, "source": source})
    loaded = _count(
        conn, "SELECT count(*) FROM staging.requests WHERE day BETWEEN $start AND $end", days.params
    )
    return {
        "files": len(files) + len(gen_files),
        "lines_read": res.lines_read,
        "rejected": len(res.rejects) + len(gen_rejects),
        "torn": sum(r.torn for r in res.rejects),
        "duplicates_dropped": n_new - n_distinct,
        "rows": loaded,
    }


def load_outcomes(
    conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, days: DayRange
) -> dict[str, int]:
    """Outcome events of the days into staging.outcomes."""
    ensure_tables(conn)
    files = outcome_files(cfg.logs_dir, days.days)
    _rejects_tables(conn)
    res = load_jsonl(conn, OUTCOME_SPEC, files, "_out_in", lambda p: p.parent.name[3:])
    _add_rejects(conn, "outcomes", res.rejects, days.start)
    _add_stats(conn, "outcomes", days, files, "_out_in", None)
    with transaction(conn):
        run_sql(conn, "staging/outcomes_replace", days.params)
        run_sql(conn, "staging/rejected_replace", {**days.params, "source": "outcomes"})
    loaded = _count(
        conn, "SELECT count(*) FROM staging.outcomes WHERE day BETWEEN $start AND $end", days.params
    )
    return {
        "files": len(files),
        "lines_read": res.lines_read,
        "rejected": len(res.rejects),
        "rows": loaded,
    }


def load_invoices(
    conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, days: DayRange
) -> dict[str, int]:
    """Provider invoices and the platform statement into staging.invoice_lines. Raises
    `InvoiceError` (naming file and line) before anything is written."""
    ensure_tables(conn)
    rows = read_invoices(cfg, cfg.invoices_dir)
    table: pa.Table = invoice_table(rows)
    conn.register("_inv_arrow", table)
    try:
        conn.execute("CREATE OR REPLACE TEMP TABLE _inv_in AS SELECT * FROM _inv_arrow")
    finally:
        conn.unregister("_inv_arrow")
    with transaction(conn):
        run_sql(conn, "staging/invoice_lines_replace", days.params)
    return {
        "files": len({r["x_SourceFile"] for r in rows}),
        "rows": _count(
            conn,
            "SELECT count(*) FROM staging.invoice_lines WHERE day BETWEEN $start AND $end",
            days.params,
        ),
    }


# --------------------------------------------------------------------------- reconcile


def build_request_groups(conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, days: DayRange) -> int:
    ensure_tables(conn)
    create_reference_tables(conn, cfg)
    with transaction(conn):
        run_sql(conn, "intermediate/request_groups", days.params)
    return _count(
        conn,
        "SELECT count(*) FROM intermediate.request_groups WHERE day BETWEEN $start AND $end",
        days.params,
    )


def build_reconciliation(conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, days: DayRange) -> int:
    ensure_tables(conn)
    params = {
        **days.params,
        "tol_usd": cfg.pipeline.variance_tolerance_usd,
        "tol_pct": cfg.pipeline.variance_tolerance_pct,
    }
    with transaction(conn):
        run_sql(conn, "marts/reconciliation_daily", params)
    return _count(
        conn,
        "SELECT count(*) FROM marts.reconciliation_daily WHERE day BETWEEN $start AND $end",
        days.params,
    )


def build_split_billing(
    conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, days: DayRange
) -> dict[str, int]:
    """marts.split_billing_daily, marts.unattributed_usage and marts.non_usage_charges."""
    ensure_tables(conn)
    create_reference_tables(conn, cfg)
    run_sql(conn, "marts/split_prepare_provider", days.params)
    run_sql(conn, "intermediate/allocate")
    run_sql(conn, "marts/split_prepare_platform", days.params)
    run_sql(conn, "intermediate/allocate")
    run_sql(conn, "marts/unattributed_prepare")
    with transaction(conn):
        run_sql(conn, "marts/split_billing_daily", days.params)
        run_sql(conn, "marts/unattributed_usage", days.params)
        run_sql(conn, "marts/non_usage_charges", days.params)
    out = {}
    for t in ("split_billing_daily", "unattributed_usage", "non_usage_charges"):
        out[t] = _count(
            conn, f"SELECT count(*) FROM marts.{t} WHERE day BETWEEN $start AND $end", days.params
        )
    return out


def build_mart(
    conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, days: DayRange, name: str
) -> int:
    """One of the insight marts (cost_per_accepted_output, policy_violations, routing_health)."""
    ensure_tables(conn)
    create_reference_tables(conn, cfg)
    with transaction(conn):
        run_sql(conn, f"marts/{name}", days.params)
    col = "period" if name == "cost_per_accepted_output" else "day"
    return _count(
        conn, f"SELECT count(*) FROM marts.{name} WHERE {col} BETWEEN $start AND $end", days.params
    )


ALL_STEPS = (
    "requests",
    "outcomes",
    "invoices",
    "request_groups",
    "reconciliation",
    "split_billing",
    "cost_per_accepted_output",
    "policy_violations",
    "routing_health",
)


def run_all(conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, days: DayRange) -> None:
    """Every step in dependency order, without Dagster (benches and quick tests)."""
    load_requests(conn, cfg, days)
    load_outcomes(conn, cfg, days)
    load_invoices(conn, cfg, days)
    build_request_groups(conn, cfg, days)
    build_reconciliation(conn, cfg, days)
    build_split_billing(conn, cfg, days)
    for name in ("cost_per_accepted_output", "policy_violations", "routing_health"):
        build_mart(conn, cfg, days, name)
