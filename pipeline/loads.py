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

from routing_core.config import LedgerConfig

from .reference import create_reference_tables
from .sources.invoice_store import sync_invoices
from .sources.jsonl import Reject, clean_file, count_lines, create_source_macro, load_jsonl
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
    """Request logs (+ OpenRouter generation records) of the days into staging.requests.

    Fast path: one strict, streaming `INSERT ... SELECT FROM read_json(every file)` of the
    valid rows, then a per-file comparison of rows loaded vs lines in the file. Only a file
    that fails the strict read or loses lines to the contract check is re-read line by line
    (its rows replaced by its cleaned copy), so rejects carry file and line."""
    ensure_tables(conn)
    logs = cfg.logs_dir
    files = request_files(logs, days.days)
    create_source_macro(conn, REQUEST_SPEC, "request_log_src")
    _rejects_tables(conn)

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

    unreadable: list[Path] = []
    while True:
        cleaned: list[Path] = []
        try:
            with transaction(conn):
                _insert_request_files(conn, days, files, unreadable, cleaned)
            break
        except duckdb.Error:
            if unreadable:
                raise
            # The strict read of all files failed (the transaction is rolled back): find the
            # files it cannot parse, then load again with those on the line-by-line path.
            unreadable = [f for f in files if not _strict_readable(conn, f)]
            if not unreadable:
                raise
        finally:
            for clean in cleaned:
                clean.unlink(missing_ok=True)
    stats = conn.execute(
        "SELECT coalesce(sum(files), 0), coalesce(sum(lines_read), 0), coalesce(sum(rejected), 0), "
        "coalesce(sum(torn), 0), coalesce(sum(duplicates_dropped), 0) FROM raw.load_stats "
        "WHERE day BETWEEN $start AND $end AND source IN ('requests', 'openrouter_generations')",
        days.params,
    ).fetchone()
    rows = _count(
        conn, "SELECT count(*) FROM staging.requests WHERE day BETWEEN $start AND $end", days.params
    )
    return {
        "files": int(stats[0]),
        "lines_read": int(stats[1]),
        "rejected": int(stats[2]),
        "torn": int(stats[3]),
        "duplicates_dropped": int(stats[4]),
        "rows": rows,
    }


def _folder_day(f: Path) -> str:
    """The UTC day of a log file: its dt=YYYY-MM-DD folder."""
    return f.parent.name.removeprefix("dt=")


def _strict_readable(conn: duckdb.DuckDBPyConnection, f: Path) -> bool:
    try:
        conn.execute("SELECT count(*) FROM request_log_src($files)", {"files": [str(f)]}).fetchall()
    except duckdb.Error:
        return False
    return True


def _insert_request_files(
    conn: duckdb.DuckDBPyConnection,
    days: DayRange,
    files: list[Path],
    unreadable: list[Path],
    cleaned: list[Path],
) -> None:
    """Inside the transaction: replace the days' router rows from `files`."""
    conn.execute(
        "DELETE FROM staging.requests WHERE day BETWEEN $start AND $end", days.params
    ).fetchall()
    by_day: dict[str, list[str]] = {}
    for f in files:
        if f not in unreadable:
            by_day.setdefault(_folder_day(f), []).append(str(f))
    for day, names in sorted(by_day.items()):  # one streaming statement per day folder
        run_sql(conn, "staging/requests_insert", {"files": names, "source_file": None, "day": day})
    loaded = dict(
        conn.execute(
            "SELECT source_file, count(*) FROM staging.requests "
            "WHERE day BETWEEN $start AND $end AND log_source = 'router' GROUP BY 1",
            days.params,
        ).fetchall()
    )
    # A file that lost lines to the contract check goes through the line-by-line pass.
    short = unreadable + [
        f for f in files if f not in unreadable and loaded.get(str(f), 0) != count_lines(f)
    ]
    if short:
        conn.execute(
            "DELETE FROM staging.requests WHERE source_file IN (SELECT unnest($f))",
            {"f": [str(f) for f in short]},
        ).fetchall()
    rejects: list[Reject] = []
    for f in short:
        clean, bad, _ = clean_file(REQUEST_SPEC, f)
        cleaned.append(clean)
        rejects.extend(bad)
        try:
            run_sql(
                conn,
                "staging/requests_insert",
                {"files": [str(clean)], "source_file": str(f), "day": _folder_day(f)},
            )
        except duckdb.Error as e:
            raise ValueError(f"{f}: could not load after line-by-line validation: {e}") from e
    _finish_requests(conn, days, files, rejects)


def _finish_requests(
    conn: duckdb.DuckDBPyConnection, days: DayRange, files: list[Path], rejects: list[Reject]
) -> None:
    """Inside the transaction, after the router rows are in: generation rows, duplicates,
    misfiled copies, rejected records and load counts."""
    _add_rejects(conn, "requests", rejects, days.start)
    conn.execute("INSERT INTO staging.requests SELECT * FROM _gen_rows").fetchall()
    per_day = dict(
        conn.execute(
            "SELECT day, count(*) FROM staging.requests WHERE day BETWEEN $start AND $end "
            "AND log_source = 'router' GROUP BY 1",
            days.params,
        ).fetchall()
    )
    n, distinct_hashes = conn.execute(
        "SELECT count(*), count(DISTINCT hash(request_id)) FROM staging.requests "
        "WHERE day BETWEEN $start AND $end",
        days.params,
    ).fetchone()
    if n != distinct_hashes:  # distinct hashes imply distinct ids: the window runs only if needed
        run_sql(conn, "staging/requests_dedup", days.params)
    misfiled = _count(
        conn,
        "SELECT count(*) FROM staging.requests WHERE day BETWEEN CAST($start AS DATE) - 1 "
        "AND CAST($end AS DATE) + 1 AND CAST(ts AS DATE) <> day",
        days.params,
    )
    if misfiled:
        run_sql(conn, "staging/requests_misfiled", days.params)
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _req_loaded AS SELECT day FROM staging.requests "
        "WHERE day BETWEEN $start AND $end AND log_source = 'router'",
        days.params,
    ).fetchall()
    # lines_read counts every line read, duplicates included.
    conn.execute("CREATE OR REPLACE TEMP TABLE _req_lines (day DATE)").fetchall()
    if per_day:
        conn.executemany(
            "INSERT INTO _req_lines SELECT ? FROM range(?)", [(d, c) for d, c in per_day.items()]
        )
    _add_stats(conn, "requests", days, files, "_req_lines", None)
    after = dict(conn.execute("SELECT day, count(*) FROM _req_loaded GROUP BY 1").fetchall())
    for d, c in per_day.items():
        if c != after.get(d, 0):
            conn.execute(
                "UPDATE _stats SET duplicates_dropped = ? WHERE day = ? AND source = 'requests'",
                [c - after.get(d, 0), d],
            ).fetchall()
    conn.execute("CREATE OR REPLACE TEMP TABLE _gen_in AS SELECT day FROM _gen_rows").fetchall()
    _add_stats(conn, "openrouter_generations", days, [], "_gen_in", None)
    for source in ("requests", "openrouter_generations"):
        run_sql(conn, "staging/rejected_replace", {**days.params, "source": source})


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
    conn: duckdb.DuckDBPyConnection,
    cfg: LedgerConfig,
    days: DayRange,
    run_id: str | None = None,
) -> dict[str, int]:
    """Provider invoices and the platform statement into staging.invoice_lines and
    staging.invoice_coverage for the days. Only new or changed files are parsed
    (`invoice_store.sync_invoices`); a file that cannot be read is refused whole (named in
    raw.load_manifest and raw.rejected_records, its days covered `unreadable`) and the others
    still load: no invoice file stops the load. The days are rebuilt, in one transaction,
    from the persisted lines of the current files."""
    ensure_tables(conn)
    sync = sync_invoices(conn, cfg, run_id)
    with transaction(conn):
        run_sql(conn, "staging/invoice_lines_replace", days.params)
        run_sql(conn, "staging/invoice_coverage_replace", days.params)
        run_sql(conn, "staging/invoice_days_staged", days.params)
    refused_now = _count(conn, "SELECT count(*) FROM raw.invoice_files WHERE status = 'refused'")
    return {
        "files": sync.files,
        "parsed": len(sync.parsed),
        "unchanged": sync.unchanged,
        "removed": len(sync.removed),
        "refused": refused_now,
        "superseded_lines": _count(
            conn,
            "SELECT count(*) FROM raw.invoice_lines WHERE x_SupersededBy IS NOT NULL "
            "AND day BETWEEN $start AND $end",
            days.params,
        ),
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


# Days either side of a day whose cells the cause analysis looks at (a drift or a discount is
# only visible as a pattern across days).
CAUSE_WINDOW_DAYS = 31


def _has_table(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        _count(
            conn,
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        )
    )


def _has_column(conn: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    return bool(
        _count(
            conn,
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? AND column_name = ?",
            [schema, table, column],
        )
    )


def build_reconciliation(conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, days: DayRange) -> int:
    """marts.reconciliation_daily (status, likely cause, explanation) and
    marts.reconciliation_log_gaps for `days`. The causes look at the cells of
    CAUSE_WINDOW_DAYS either side, computed from staging and intermediate tables (not from
    the mart), so re-running a day gives the same answer for the same inputs."""
    ensure_tables(conn)
    run_sql(conn, "marts/reconciliation_tables")
    create_reference_tables(conn, cfg)
    window = dt.timedelta(days=CAUSE_WINDOW_DAYS)
    params = {
        **days.params,
        "wstart": days.start - window,
        "wend": days.end + window,
        "window": CAUSE_WINDOW_DAYS,
        "tol_usd": cfg.pipeline.variance_tolerance_usd,
        "tol_pct": cfg.pipeline.variance_tolerance_pct,
    }
    # The amount to reconcile: x_UsageCost (BilledCost, or EffectiveCost for commitment-covered
    # usage) where the invoice loader provides it. A fixed expression, never user data.
    cost = (
        "coalesce(x_UsageCost, BilledCost)"
        if _has_column(conn, "staging", "invoice_lines", "x_UsageCost")
        else "BilledCost"
    )
    conn.execute(
        f"CREATE OR REPLACE TEMP VIEW _rc_lines AS "
        f"SELECT *, {cost} AS usage_cost FROM staging.invoice_lines"
    )
    if _has_table(conn, "staging", "invoice_coverage"):
        run_sql(conn, "marts/reconciliation_coverage", params)
    else:
        run_sql(conn, "marts/reconciliation_coverage_derived", params)
        run_sql(conn, "marts/reconciliation_coverage_refused", params)
    run_sql(conn, "marts/reconciliation_cells", params)
    run_sql(conn, "marts/reconciliation_log_gaps", params)
    run_sql(conn, "marts/reconciliation_causes", params)
    with transaction(conn):
        run_sql(conn, "marts/reconciliation_log_gaps_replace", params)
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
