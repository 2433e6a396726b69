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
from typing import Any

import duckdb

from routing_core.config import LedgerConfig

from .reference import create_reference_tables
from .sources import accounting as acc
from .sources.invoice_store import sync_invoices
from .sources.jsonl import paths_inside
from .sources.logs import OUTCOME_SPEC, REQUEST_SPEC, day_files, outcome_files, request_files
from .sources.openrouter import SUBDIR as GENERATIONS_DIR
from .sources.openrouter import read_generations
from .sql import load_sql, run_sql


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


# --------------------------------------------------------------------------- ingest


def load_requests(
    conn: duckdb.DuckDBPyConnection,
    cfg: LedgerConfig,
    days: DayRange,
    run_id: str | None = None,
) -> dict[str, int]:
    """Request logs (+ OpenRouter generation records) of the dt= folders of the days into
    staging.requests, every line accounted for (see pipeline.sources.accounting): loaded,
    duplicate or quarantined in raw.rejected_records with a reason code, and one
    raw.load_manifest row per file under `run_id` (the Dagster run id; default a fresh id)."""
    ensure_tables(conn)
    run_id = run_id or acc.new_run_id()
    logs = cfg.logs_dir
    acc.start_load(conn)
    req_files = request_files(logs, days.days)
    gen_found = day_files(logs, GENERATIONS_DIR, days.days, ("*.json", "*.jsonl"))
    sources = ("requests", "openrouter_generations")
    # Nothing new or changed: nothing is read. Not with generation records, whose rows also
    # depend on the config (providers, models, keys), which a file's fingerprint does not see.
    prev = (
        None if gen_found else acc.unchanged_since_last_load(conn, sources, *_span(days), req_files)
    )
    if prev is not None:
        with transaction(conn):
            acc.record_unchanged(conn, prev, run_id, days.start, days.end, sources)
        return _ingest_stats(conn, days, run_id, "staging.requests")
    # A clean day streams straight into staging.requests; any refused line, blank line or
    # duplicate id rolls that back and the full path below names every line's fate.
    if not gen_found and acc.stream_clean_load(
        conn, REQUEST_SPEC, acc.REQUESTS, req_files, logs, days.start, days.end, run_id, sources
    ):
        return _ingest_stats(conn, days, run_id, "staging.requests")
    loads = acc.read_jsonl_files(conn, REQUEST_SPEC, req_files, logs, "_req_in")
    acc.candidates(conn, acc.REQUESTS, "_req_in")
    gen_inside, gen_outside = paths_inside(logs, gen_found)
    gen_loads, gen_refused = acc.refuse_outside("openrouter_generations", gen_outside, logs)
    scans = acc.fingerprint_all(gen_inside)
    bad_loads, bad_rejects = acc.refuse_unreadable("openrouter_generations", scans)
    gen_loads += bad_loads
    gen_refused += bad_rejects
    readable = [f for f in gen_inside if not isinstance(scans[f], OSError)]
    gen_rows, gen_rejects, gen_lines = read_generations(cfg, readable)
    for f in readable:
        gen_loads.append(
            acc.FileLoad(f, "openrouter_generations", acc.folder_day(f), scans[f], gen_lines[f])
        )
    if gen_rows:
        cols = list(gen_rows[0])
        conn.executemany(
            f"INSERT INTO _extra ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(r[c] for c in cols) for r in gen_rows],
        )
    acc.add_rejects(conn, "openrouter_generations", gen_refused + gen_rejects)
    acc.add_files(conn, loads + gen_loads)
    with transaction(conn):
        acc.replace_rows(conn, acc.REQUESTS, days.start, days.end, run_id, sources)
    return _ingest_stats(conn, days, run_id, "staging.requests")


def _span(days: DayRange) -> tuple[dt.date, dt.date]:
    return days.start, days.end


def _ingest_stats(
    conn: duckdb.DuckDBPyConnection, days: DayRange, run_id: str, table: str
) -> dict[str, int]:
    """This load's totals from its manifest rows, and the rows reported under the days."""
    files, lines, loaded, dups, quarantined, refused = conn.execute(
        "SELECT count(*), coalesce(sum(lines), 0), coalesce(sum(loaded), 0), "
        "coalesce(sum(duplicates), 0), coalesce(sum(quarantined), 0), "
        "count(*) FILTER (WHERE status = 'refused') FROM raw.load_manifest WHERE run_id = $r "
        "AND file IN (SELECT file FROM _files)",
        {"r": run_id},
    ).fetchone()
    torn = _count(conn, "SELECT count(*) FROM _rejects WHERE torn")
    # Records of these folders reported under a day outside the run (misfiled by up to a day):
    # that day's marts include them once it is rebuilt.
    outside = _count(
        conn,
        f"SELECT count(*) FROM {table} WHERE file_day BETWEEN $start AND $end "
        "AND day NOT BETWEEN $start AND $end",
        days.params,
    )
    rows = _count(
        conn, f"SELECT count(*) FROM {table} WHERE day BETWEEN $start AND $end", days.params
    )
    return {
        "files": int(files),
        "lines_read": int(lines),
        "loaded": int(loaded),
        "rejected": int(quarantined),
        "torn": torn,
        "duplicates_dropped": int(dups),
        "refused_files": int(refused),
        "reported_outside_range": outside,
        "rows": rows,
    }


def load_outcomes(
    conn: duckdb.DuckDBPyConnection,
    cfg: LedgerConfig,
    days: DayRange,
    run_id: str | None = None,
) -> dict[str, int]:
    """Outcome events of the dt= folders of the days into staging.outcomes, one row per
    event_id, every line accounted for like the request logs."""
    ensure_tables(conn)
    run_id = run_id or acc.new_run_id()
    logs = cfg.logs_dir
    acc.start_load(conn)
    files = outcome_files(logs, days.days)
    prev = acc.unchanged_since_last_load(conn, ("outcomes",), *_span(days), files)
    if prev is not None:  # nothing new or changed: nothing is read
        with transaction(conn):
            acc.record_unchanged(conn, prev, run_id, days.start, days.end, ("outcomes",))
        return _ingest_stats(conn, days, run_id, "staging.outcomes")
    if acc.stream_clean_load(
        conn, OUTCOME_SPEC, acc.OUTCOMES, files, logs, days.start, days.end, run_id, ("outcomes",)
    ):
        return _ingest_stats(conn, days, run_id, "staging.outcomes")
    loads = acc.read_jsonl_files(conn, OUTCOME_SPEC, files, logs, "_out_in")
    acc.candidates(conn, acc.OUTCOMES, "_out_in")
    acc.add_files(conn, loads)
    with transaction(conn):
        acc.replace_rows(conn, acc.OUTCOMES, days.start, days.end, run_id, ("outcomes",))
    return _ingest_stats(conn, days, run_id, "staging.outcomes")


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
    from the persisted lines of the current files, unless every one of them is already built
    and no invoice file touching them changed since (then there is nothing to do)."""
    sync = sync_invoices(conn, cfg, run_id)  # creates the tables first
    stale = _count(conn, load_sql("staging/invoice_days_stale"), days.params)
    if stale or sync.parsed or sync.refused or sync.removed:
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
