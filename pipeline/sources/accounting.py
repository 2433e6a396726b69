"""Every line accounted for: request logs, OpenRouter generation records and outcome events from
files to `staging.requests` / `staging.outcomes`, each input line ending loaded, duplicate or
quarantined, and one `raw.load_manifest` row per file and load.

Ownership and days (re-running any day, in any order, gives the same tables):
- A row is OWNED by its file's dt= folder day (`file_day`): loading days [start, end] replaces
  exactly the rows whose files sit in those folders.
- A row is REPORTED under the UTC day of its `ts` (`day`), whatever folder it was found in. A
  record more than one day away from its folder is quarantined (`misfiled_far`).
- One row per id (`request_id` / `event_id`). Among all copies (this load's and those already
  loaded from other folders) the winner is the first by: filed under its own UTC day, then
  earlier folder day, then file path, then record number. A copy with the winner's content
  is a `duplicate`; with other content a `conflicting_duplicate` (quarantined). When a copy of
  this load beats one loaded earlier from another folder, that older copy is removed and its
  file's latest manifest row and quarantine are corrected, so the result does not depend on
  the order the days were loaded in.
"""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from .jsonl import (
    MAX_RAW,
    FileScan,
    JsonlSpec,
    Reject,
    create_target,
    day_of,
    explain,
    fingerprint_and_lines,
    fingerprint_of,
    load_files,
    locate,
    missing_rows,
    paths_inside,
    read_sql,
    rejects_of,
    scan_file,
)


@dataclass(frozen=True)
class Target:
    """A staging table fed by this module, and how its candidate rows are built."""

    table: str  # staging.requests | staging.outcomes
    id_col: str  # request_id | event_id
    select: str  # SELECT list over a jsonl.load_files target producing the staging columns


REQUEST_SELECT = """
    CAST(v_ts AS DATE) AS day, v_request_id AS request_id, v_ts AS ts,
    v_duration_ms AS duration_ms, v_api_key_id AS api_key_id, v_environment AS environment,
    v_app AS app, v_member_id AS member_id, v_workload AS workload, v_data_class AS data_class,
    v_workflow_id AS workflow_id, v_idempotency_key AS idempotency_key,
    v_requested_models AS requested_models, v_model AS model, v_provider AS provider,
    v_upstream_model AS upstream_model, v_credential AS credential, v_key_id AS key_id,
    v_account.project_id AS acct_project_id, v_account.api_key_id AS acct_api_key_id,
    v_account.workspace_id AS acct_workspace_id,
    v_account.sub_account_id AS acct_sub_account_id,
    v_account.billing_account_id AS acct_billing_account_id,
    v_account.organization_id AS acct_organization_id,
    CAST(coalesce(v_attempts, []) AS STRUCT(model VARCHAR, provider VARCHAR, credential VARCHAR,
         key_id VARCHAR, status VARCHAR, http_status INTEGER, error_type VARCHAR,
         latency_ms DOUBLE)[]) AS attempts,
    CAST(coalesce(len(v_attempts), 0) AS INTEGER) AS n_attempts,
    v_fallback_used AS fallback_used, v_fallback_reason AS fallback_reason, v_status AS status,
    CAST(v_error_code AS INTEGER) AS error_code, v_zdr AS zdr,
    v_usage.input_tokens AS input_tokens, v_usage.cache_read_tokens AS cache_read_tokens,
    v_usage.cache_write_tokens AS cache_write_tokens, v_usage.output_tokens AS output_tokens,
    v_usage.reasoning_tokens AS reasoning_tokens,
    v_cost.list_usd AS list_usd, v_cost.provider_usd AS provider_usd,
    v_cost.platform_fee_usd AS platform_fee_usd,
    v_cost.platform_credits_usd AS platform_credits_usd,
    'router' AS log_source, filename AS source_file,
    file_day, line_no AS source_record,
    v_usage_source AS usage_source, v_ttfb_ms AS ttfb_ms, v_stream AS stream,
    v_error_reason AS error_reason
"""

OUTCOME_SELECT = """
    CAST(v_ts AS DATE) AS day, v_event_id AS event_id, v_ts AS ts, v_request_id AS request_id,
    v_workflow_id AS workflow_id, v_accepted AS accepted, v_score AS score, v_reason AS reason,
    filename AS source_file, file_day, line_no AS source_record
"""

REQUESTS = Target("staging.requests", "request_id", REQUEST_SELECT)
OUTCOMES = Target("staging.outcomes", "event_id", OUTCOME_SELECT)

# Columns that are where a row came from, not what it says (excluded from its content hash).
_PROVENANCE = ("day", "source_file", "file_day", "source_record", "log_source", "content_hash")


@dataclass
class FileLoad:
    """One input file of a load: where it is, its fingerprint and what became of its lines."""

    path: Path
    source: str
    file_day: dt.date
    scan: FileScan | None = None
    lines: int = 0
    status: str = "loaded"
    reason: str | None = None


def folder_day(f: Path) -> dt.date:
    day = day_of(f.parent.name)
    if day is None:  # day_files only lists dt=YYYY-MM-DD folders
        raise ValueError(f"{f}: not under a dt=YYYY-MM-DD folder")
    return day


def _scan_or_error(f: Path, fingerprint: bool = True) -> FileScan | OSError:
    try:
        return scan_file(f, fingerprint)
    except OSError as e:  # removed or unreadable between listing and reading
        return e


def fingerprint_all(files: list[Path]) -> dict[Path, FileScan | OSError]:
    """sha256 and long-line scan of every file, two at a time (hashlib releases the GIL);
    an OSError instead for a file that cannot be read."""
    if not files:
        return {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(files, pool.map(_scan_or_error, files), strict=True))


def refuse_unreadable(
    source: str, scans: dict[Path, FileScan | OSError]
) -> tuple[list[FileLoad], list[Reject]]:
    """File-level refusals for files that could not be opened or read."""
    loads, rejects = [], []
    for f, scan in scans.items():
        if isinstance(scan, OSError):
            day = day_of(f.parent.name) or dt.date(1970, 1, 1)
            loads.append(FileLoad(f, source, day, None, 0, "refused", "unreadable_file"))
            rejects.append(
                Reject(
                    str(f),
                    None,
                    "unreadable_file",
                    f"could not read the file ({scan.strerror or scan}); fix its permissions "
                    "or restore it, then re-run the day",
                    "",
                )
            )
    return loads, rejects


def start_load(conn: duckdb.DuckDBPyConnection) -> None:
    """TEMP tables every load fills: the rejects and the per-file accounting."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _rejects AS SELECT * FROM raw.rejected_records LIMIT 0"
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _files (file VARCHAR, source VARCHAR, file_day DATE, "
        "bytes BIGINT, fingerprint VARCHAR, lines BIGINT, status VARCHAR, reason VARCHAR)"
    )


def add_rejects(conn: duckdb.DuckDBPyConnection, source: str, rejects: list[Reject]) -> None:
    rows = []
    for r in rejects:
        day = day_of(Path(r.file).parent.name) or dt.date(1970, 1, 1)
        rows.append((day, source, r.file, r.line, r.error, r.raw_text[:MAX_RAW], r.torn, r.reason))
    if rows:
        conn.executemany(
            "INSERT INTO _rejects (day, source, file, line, error, raw_text, torn, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def add_files(conn: duckdb.DuckDBPyConnection, loads: list[FileLoad]) -> None:
    rows = [
        (
            str(f.path),
            f.source,
            f.file_day,
            f.scan.bytes if f.scan else 0,
            f.scan.fingerprint if f.scan else "",
            f.lines,
            f.status,
            f.reason,
        )
        for f in loads
    ]
    if rows:
        conn.executemany("INSERT INTO _files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def refuse_outside(
    source: str, outside: list[Path], root: Path
) -> tuple[list[FileLoad], list[Reject]]:
    """File-level refusals for symlinks that lead outside the configured logs path."""
    loads, rejects = [], []
    for f in outside:
        day = day_of(f.parent.name) or dt.date(1970, 1, 1)
        loads.append(FileLoad(f, source, day, None, 0, "refused", "symlink_outside_paths"))
        rejects.append(
            Reject(
                str(f),
                None,
                "symlink_outside_paths",
                f"{explain('symlink_outside_paths')} ({root}); not read. Copy the file into "
                "the logs folder if it belongs to this ledger.",
                "",
            )
        )
    return loads, rejects


def read_jsonl_files(
    conn: duckdb.DuckDBPyConnection,
    spec: JsonlSpec,
    files: list[Path],
    root: Path,
    target_in: str,
) -> list[FileLoad]:
    """Read every file into TEMP `target_in` (see jsonl.load_files); record rejects and files."""
    inside, outside = paths_inside(root, files)
    scans = {f: _scan_or_error(f, fingerprint=False) for f in inside}
    create_target(conn, spec, target_in)
    loads, refused_rejects = refuse_outside(spec.source, outside, root)
    bad_loads, bad_rejects = refuse_unreadable(spec.source, scans)
    loads += bad_loads
    rejects: list[Reject] = list(refused_rejects) + bad_rejects
    batch = []
    for f in inside:
        scan = scans[f]
        if isinstance(scan, OSError):
            continue
        fl = FileLoad(f, spec.source, folder_day(f), scan)
        batch.append((scan, fl.file_day))
        loads.append(fl)
    # The sha256 of every file runs in threads while DuckDB reads them (both release the GIL).
    with ThreadPoolExecutor(max_workers=2) as pool:
        hashes = {fl.path: pool.submit(fingerprint_of, fl.path) for fl in loads if fl.scan}
        load_files(conn, spec, batch, target_in)
        for fl in loads:
            if fl.scan:
                try:
                    fl.scan.fingerprint = hashes[fl.path].result()
                except OSError as e:  # pragma: no cover - vanished while being read
                    fl.scan.fingerprint = f"unreadable: {e.strerror or e}"
    rejects.extend(rejects_of(conn, target_in))
    counts = dict(conn.execute(f"SELECT filename, count(*) FROM {target_in} GROUP BY 1").fetchall())
    for fl in loads:
        fl.lines = int(counts.get(str(fl.path), 0))
    add_rejects(conn, spec.source, rejects)
    return loads


class _NotClean(Exception):
    """The streamed load found a line it does not take (a bad line, a blank line, a duplicate
    id): rolled back, the day is loaded by the full path."""


def stream_clean_load(
    conn: duckdb.DuckDBPyConnection,
    spec: JsonlSpec,
    target: Target,
    files: list[Path],
    root: Path,
    start: dt.date,
    end: dt.date,
    run_id: str,
    sources: tuple[str, ...],
) -> bool:
    """Load the days [start, end] by streaming the validated read of every file straight into
    the staging table (no TEMP copy), in ONE transaction. Each file is read on its own, so its
    rows are numbered 1..n; when n loaded rows equal the file's physical line count (counted
    with its sha256, in threads, while DuckDB reads) every line loaded. A file where they
    differ (a refused, blank or torn line) has its lines numbered in Python and only the lines
    not loaded validated again for their reasons (`jsonl.missing_rows`). Then no id may be seen twice,
    nor near this load in another folder, and the manifest and load stats are written as the
    full path writes them. Returns False, with everything rolled back, when an id is seen
    twice (ranking needs the full path) or a file has a line over MAX_LINE: the caller then
    runs the full path. Acceptance is the same SQL (`read_sql`) either way."""
    inside, outside = paths_inside(root, files)
    scans = {f: _scan_or_error(f, fingerprint=False) for f in inside}
    if any(isinstance(s, OSError) or s.long_lines for s in scans.values()):
        return False
    t, idc = target.table, target.id_col
    loads, refused = refuse_outside(spec.source, outside, root)
    fl_by_path = {}
    for f in inside:
        fl = FileLoad(f, spec.source, folder_day(f), scans[f])  # type: ignore[arg-type]
        fl_by_path[f] = fl
        loads.append(fl)
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _load_files (read_path VARCHAR, orig VARCHAR, file_day DATE)"
    )
    if inside:
        conn.executemany(
            "INSERT INTO _load_files VALUES (?, ?, ?)",
            [(str(f), str(f), fl_by_path[f].file_day) for f in inside],
        )
    p = {"start": start, "end": end}
    owned = "coalesce(file_day, day) BETWEEN $start AND $end"
    insert = f"INSERT INTO {t} BY NAME SELECT {target.select} FROM ({read_sql(spec)}) AS r WHERE r.reason IS NULL"
    with ThreadPoolExecutor(max_workers=2) as pool:
        fut = {f: pool.submit(fingerprint_and_lines, f) for f in inside}
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(f"DELETE FROM {t} WHERE {owned}", p).fetchall()
            for f in inside:  # one read per file: its rows are numbered 1..n
                conn.execute(insert, {"files": [str(f)]}).fetchall()
            got = {
                r[0]: (int(r[1]), int(r[2]))
                for r in conn.execute(
                    f"SELECT source_file, count(*), max(source_record) FROM {t} "
                    f"WHERE {owned} GROUP BY 1",
                    p,
                ).fetchall()
            }
            rejects: list[Reject] = []
            for f in inside:
                try:
                    sha, physical = fut[f].result()
                except OSError as e:  # vanished or unreadable meanwhile: the full path refuses it
                    raise _NotClean(str(f)) from e
                n, last = got.get(str(f), (0, 0))
                if not (n == last == physical):
                    # Not every line loaded: the lines not loaded, of this file only, are
                    # validated again for their reasons.
                    loaded = {
                        int(r[0])
                        for r in conn.execute(
                            f"SELECT source_record FROM {t} WHERE source_file = $f AND {owned}",
                            {**p, "f": str(f)},
                        ).fetchall()
                    }
                    got_missing = missing_rows(conn, spec, f, fl_by_path[f].file_day, loaded)
                    if got_missing is None or len(loaded) + len(got_missing[1]) != got_missing[0]:
                        raise _NotClean(str(f))  # pragma: no cover - the reads disagree
                    n, file_rejects = got_missing
                    rejects.extend(file_rejects)
                fl = fl_by_path[f]
                assert fl.scan is not None
                fl.scan.fingerprint, fl.lines = sha, n
            n, distinct = conn.execute(
                f"SELECT count(*), count(DISTINCT {idc}) FROM {t} WHERE {owned}", p
            ).fetchone()
            if n != distinct:
                raise _NotClean("an id is seen twice")
            near = conn.execute(
                f"""SELECT count(*) FROM {t} o
                WHERE o.day BETWEEN (SELECT min(day) FROM {t} WHERE {owned}) - 2
                                AND (SELECT max(day) FROM {t} WHERE {owned}) + 2
                  AND NOT (coalesce(o.file_day, o.day) BETWEEN $start AND $end)
                  AND o.{idc} IN (SELECT {idc} FROM {t} WHERE {owned})""",
                p,
            ).fetchone()[0]
            if near:
                raise _NotClean("an id is already loaded from another folder")
            conn.execute(
                f"""CREATE OR REPLACE TEMP TABLE _fate_counts AS
                SELECT source_file AS file, count(*) AS loaded, 0 AS duplicates, 0 AS conflicts,
                       min(day) AS first_day, max(day) AS last_day
                FROM {t} WHERE {owned} GROUP BY 1""",
                p,
            )
            conn.execute(
                "CREATE OR REPLACE TEMP TABLE _fate (cand_rowid BIGINT, old_rowid BIGINT, "
                "source_file VARCHAR, source_record BIGINT, fate VARCHAR, win_file VARCHAR, "
                "win_record BIGINT)"
            )
            add_rejects(conn, spec.source, refused + rejects)
            add_files(conn, loads)
            _write_manifest(conn, run_id, start, end, sources)
        except _NotClean:
            conn.execute("ROLLBACK")
            return False
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return True


def candidates(conn: duckdb.DuckDBPyConnection, target: Target, target_in: str) -> None:
    """TEMP VIEW `_cand`: the valid rows of the load in the staging table's shape (a view, so
    a clean load copies its rows once, into the staging table), plus TEMP `_extra` for rows
    from other readers (OpenRouter generations), same shape."""
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE _extra AS SELECT {target.select} FROM "
        f"(SELECT t.* REPLACE (t.line_no - o.first_no + 1 AS line_no) FROM {target_in} t "
        "JOIN _offsets o USING (filename) WHERE false)"
    )
    conn.execute(
        f"CREATE OR REPLACE TEMP VIEW _cand AS SELECT {target.select} FROM "
        f"(SELECT t.* REPLACE (t.line_no - o.first_no + 1 AS line_no) FROM {target_in} t "
        "JOIN _offsets o USING (filename) WHERE t.reason IS NULL) "
        "UNION ALL SELECT * FROM _extra"
    )


def _content_cols(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The columns that are what a record says (its content hash), from TEMP `_cand`."""
    return [
        r[0]
        for r in conn.execute("SELECT column_name FROM (DESCRIBE _extra)").fetchall()
        if r[0] not in _PROVENANCE
    ]


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    target: Target,
    start: dt.date,
    end: dt.date,
    run_id: str,
    sources: tuple[str, ...],
) -> None:
    """Inside the caller's transaction: decide every candidate's fate, replace the rows owned
    by the folder days [start, end], correct losers loaded earlier from other folders, and
    write the rejects, the manifest and the per-day load stats."""
    t, idc = target.table, target.id_col
    p = {"start": start, "end": end}
    owned = "coalesce(file_day, day) BETWEEN $start AND $end"
    # Copies already loaded from other folders that compete with this load's ids: those
    # reported within two days of this load's records (a bounded look-up, so a day's cost
    # does not grow with history; copies are at most a day from their folder).
    window = (
        "o.day BETWEEN (SELECT min(day) FROM _cand) - 2 AND (SELECT max(day) FROM _cand) + 2 "
        "AND NOT (coalesce(o.file_day, o.day) BETWEEN $start AND $end)"
    )
    nearby = conn.execute(f"SELECT count(*) FROM {t} o WHERE {window}", p).fetchone()[0]
    cols = _content_cols(conn)
    old_hash = "hash(" + ", ".join(f"o.{c}" for c in cols) + ")"
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE _old AS
        SELECT o.rowid AS old_rowid, o.{idc}, o.day, coalesce(o.file_day, o.day) AS file_day,
               o.source_file, coalesce(o.source_record, 0) AS source_record,
               {old_hash} AS content_hash
        FROM {t} o
        WHERE {window if nearby else "false"}
          AND o.{idc} IN (SELECT {idc} FROM _cand)""",
        p if nearby else None,
    )
    n_old = conn.execute("SELECT count(*) FROM _old").fetchone()[0]
    n, distinct = conn.execute(
        f"SELECT count(*), count(DISTINCT hash({idc})) FROM _cand"
    ).fetchone()
    # Distinct id hashes imply distinct ids: then every candidate is loaded, no ranking.
    fast = n_old == 0 and n == distinct
    if fast:
        conn.execute(
            """CREATE OR REPLACE TEMP TABLE _fate_counts AS
            SELECT source_file AS file, count(*) AS loaded, 0 AS duplicates, 0 AS conflicts,
                   min(day) AS first_day, max(day) AS last_day
            FROM _cand GROUP BY 1"""
        )
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE _fate (cand_rowid BIGINT, old_rowid BIGINT, "
            "source_file VARCHAR, source_record BIGINT, fate VARCHAR, win_file VARCHAR, "
            "win_record BIGINT)"
        )
    else:
        # Ranking needs row ids: materialise the candidates once (this path is taken only
        # when an id is seen twice).
        conn.execute("CREATE OR REPLACE TEMP TABLE _cand_t AS SELECT * FROM _cand")
        _rank(conn, idc, cols)
    conn.execute(f"DELETE FROM {t} WHERE {owned}", p).fetchall()
    # Older copies that lost to this load: remove them and correct their files' accounting.
    losers = conn.execute(
        "SELECT old_rowid, source_file, source_record, fate, win_file, win_record "
        "FROM _fate WHERE old_rowid IS NOT NULL"
    ).fetchall()
    if losers:
        conn.execute(
            f"DELETE FROM {t} WHERE rowid IN (SELECT old_rowid FROM _fate "
            "WHERE old_rowid IS NOT NULL)"
        ).fetchall()
        _correct_old_losers(conn, losers, sources[0])
    if fast:
        conn.execute(f"INSERT INTO {t} BY NAME SELECT * FROM _cand").fetchall()
    else:
        conn.execute(
            f"INSERT INTO {t} BY NAME SELECT * FROM _cand_t WHERE rowid IN "
            "(SELECT cand_rowid FROM _fate WHERE fate = 'loaded')"
        ).fetchall()
    _conflict_rejects(conn, sources)
    _write_manifest(conn, run_id, start, end, sources)


def _rank(conn: duckdb.DuckDBPyConnection, idc: str, cols: list[str]) -> None:
    """TEMP `_fate`: for every candidate and every losing older copy, its fate by the rule;
    TEMP `_fate_counts`: per file of this load, loaded / duplicates / conflicts."""
    cand_hash = "hash(" + ", ".join(cols) + ")"
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fate AS
        WITH allc AS (
            SELECT rowid AS cand_rowid, NULL::BIGINT AS old_rowid, {idc}, day, file_day,
                   source_file, source_record, {cand_hash} AS content_hash FROM _cand_t
            UNION ALL
            SELECT NULL, old_rowid, {idc}, day, file_day, source_file, source_record,
                   content_hash FROM _old
        ), ranked AS (
            SELECT *, row_number() OVER (
                PARTITION BY {idc}
                ORDER BY (day = file_day) DESC, file_day, source_file, source_record) AS rk
            FROM allc
        )
        SELECT r.*, w.content_hash AS win_hash,
               CASE WHEN r.rk = 1 THEN 'loaded'
                    WHEN r.content_hash = w.content_hash THEN 'duplicate'
                    ELSE 'conflicting_duplicate' END AS fate,
               w.source_file AS win_file, w.source_record AS win_record
        FROM ranked r JOIN ranked w ON w.{idc} = r.{idc} AND w.rk = 1
        WHERE r.rk > 1 OR r.cand_rowid IS NOT NULL""",
    )
    conn.execute(
        """CREATE OR REPLACE TEMP TABLE _fate_counts AS
        SELECT source_file AS file,
               count(*) FILTER (WHERE fate = 'loaded') AS loaded,
               count(*) FILTER (WHERE fate = 'duplicate') AS duplicates,
               count(*) FILTER (WHERE fate = 'conflicting_duplicate') AS conflicts,
               min(day) AS first_day, max(day) AS last_day
        FROM _fate WHERE cand_rowid IS NOT NULL GROUP BY 1"""
    )


def _conflict_rejects(conn: duckdb.DuckDBPyConnection, sources: tuple[str, ...]) -> None:
    """Quarantine entries (file, line, raw text) for this load's conflicting duplicates."""
    rows = conn.execute(
        "SELECT source_file, source_record, win_file, win_record FROM _fate "
        "WHERE cand_rowid IS NOT NULL AND fate = 'conflicting_duplicate' ORDER BY 1, 2"
    ).fetchall()
    by_file: dict[str, dict[int, str]] = {}
    winners: dict[tuple[str, int], str] = {}
    for f, rec, wf, wr in rows:
        by_file.setdefault(f, {})[int(rec)] = "conflicting_duplicate"
        winners[(f, int(rec))] = f"{wf} record {wr}"
    out: list[Reject] = []
    for f, bad in by_file.items():
        out.extend(_locate_any(Path(f), bad, winners))
    source_of = dict(conn.execute("SELECT file, source FROM _files").fetchall())
    for r in out:
        add_rejects(conn, source_of.get(r.file, sources[0]), [r])


def _locate_any(
    path: Path, bad: dict[int, str], winners: dict[tuple[str, int], str]
) -> list[Reject]:
    """Rejects for records `bad` of a JSONL file (by record number) or a generation file."""
    out: list[Reject] = []
    try:
        if path.suffix == ".jsonl" and "openrouter_generations" not in path.parts:
            found = locate(path, bad)
            # locate returns physical lines; map back to record numbers in order
            for (rec, _), r in zip(sorted(bad.items()), found, strict=False):
                r.error = (
                    f"{explain('conflicting_duplicate')}: kept {winners.get((str(path), rec), '?')}"
                )
                out.append(r)
            return out
    except OSError:
        pass
    for rec in sorted(bad):
        out.append(
            Reject(
                str(path),
                rec,
                "conflicting_duplicate",
                f"{explain('conflicting_duplicate')}: kept {winners.get((str(path), rec), '?')}",
                "",
            )
        )
    return out


def _correct_old_losers(
    conn: duckdb.DuckDBPyConnection, losers: list[tuple[Any, ...]], source: str
) -> None:
    """An older copy lost to this load: its file's latest manifest row moves the line from
    loaded to duplicates/quarantined, and a conflicting one is quarantined under its folder."""
    for _rowid, f, rec, fate, wf, wr in losers:
        col = "duplicates" if fate == "duplicate" else "quarantined"
        conn.execute(
            f"UPDATE raw.load_manifest SET loaded = loaded - 1, {col} = {col} + 1 "
            "WHERE file = $f AND loaded_at = (SELECT max(loaded_at) FROM raw.load_manifest "
            "WHERE file = $f)",
            {"f": f},
        ).fetchall()
        day = day_of(Path(f).parent.name) or dt.date(1970, 1, 1)
        stat = "duplicates_dropped" if fate == "duplicate" else "rejected"
        conn.execute(
            f"UPDATE raw.load_stats SET {stat} = {stat} + 1 WHERE day = $d AND source = $s",
            {"d": day, "s": source},
        ).fetchall()
        if fate == "conflicting_duplicate":
            rej = _locate_any(Path(f), {int(rec): fate}, {(f, int(rec)): f"{wf} record {wr}"})
            for r in rej:
                conn.execute(
                    "INSERT INTO raw.rejected_records (day, source, file, line, error, raw_text, "
                    "torn, reason) VALUES (?, ?, ?, ?, ?, ?, false, ?)",
                    [day, source, r.file, r.line, r.error, r.raw_text[:MAX_RAW], r.reason],
                ).fetchall()


def _write_manifest(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    start: dt.date,
    end: dt.date,
    sources: tuple[str, ...],
) -> None:
    """raw.load_manifest: one row per file of this load; raw.load_stats per folder day; the
    days' rejects replace the previous ones."""
    p = {"run_id": run_id}
    conn.execute(
        """INSERT INTO raw.load_manifest BY NAME
        WITH fates AS (SELECT * FROM _fate_counts), rej AS (
            SELECT file, count(*) AS n FROM _rejects
            WHERE reason <> 'conflicting_duplicate' AND line IS NOT NULL GROUP BY 1
        )
        SELECT $run_id AS run_id, CAST(now() AT TIME ZONE 'UTC' AS TIMESTAMP) AS loaded_at,
               f.source, NULL AS provider, f.file, f.bytes, f.fingerprint, f.lines,
               coalesce(x.loaded, 0) AS loaded, coalesce(x.duplicates, 0) AS duplicates,
               coalesce(r.n, 0) + coalesce(x.conflicts, 0) AS quarantined,
               0 AS out_of_scope, 0 AS out_of_scope_usd, f.status, f.reason,
               x.first_day, x.last_day
        FROM _files f LEFT JOIN fates x USING (file) LEFT JOIN rej r USING (file)""",
        p,
    ).fetchall()
    for source in sources:
        q = {"start": start, "end": end, "source": source}
        conn.execute(
            "DELETE FROM raw.rejected_records WHERE source = $source AND day BETWEEN $start AND $end",
            q,
        ).fetchall()
        conn.execute(
            "DELETE FROM raw.load_stats WHERE source = $source AND day BETWEEN $start AND $end", q
        ).fetchall()
        conn.execute(
            "INSERT INTO raw.rejected_records BY NAME SELECT * FROM _rejects WHERE source = $source",
            {"source": source},
        ).fetchall()
        conn.execute(
            """INSERT INTO raw.load_stats
            WITH d AS (SELECT CAST(range AS DATE) AS day
                       FROM range(CAST($start AS TIMESTAMP), CAST($end AS TIMESTAMP) + INTERVAL 1 DAY,
                                  INTERVAL 1 DAY)),
            m AS (SELECT f.file_day AS day, count(*) AS files, sum(m.lines) AS lines,
                         sum(m.quarantined) AS quarantined, sum(m.duplicates) AS duplicates
                  FROM _files f JOIN raw.load_manifest m
                    ON m.file = f.file AND m.run_id = $run_id AND m.source = f.source
                  WHERE f.source = $source GROUP BY 1),
            t AS (SELECT day, count(*) FILTER (WHERE torn) AS torn, count(*) AS n
                  FROM _rejects WHERE source = $source GROUP BY 1)
            SELECT d.day, $source, coalesce(m.files, 0),
                   coalesce(m.lines, 0),
                   coalesce(m.quarantined, 0), coalesce(t.torn, 0), coalesce(m.duplicates, 0)
            FROM d LEFT JOIN m USING (day) LEFT JOIN t USING (day)""",
            {**q, "run_id": run_id},
        ).fetchall()


def unchanged_since_last_load(
    conn: duckdb.DuckDBPyConnection,
    sources: tuple[str, ...],
    start: dt.date,
    end: dt.date,
    files: list[Path],
) -> list[tuple[Any, ...]] | None:
    """The latest manifest rows of the folders [start, end] when the load would change nothing:
    the same set of files as their last load, each of them last loaded successfully (`loaded`
    or `unchanged`, never refused) with the same size and the same sha256. None otherwise
    (also when there are no files). The sizes are compared first, so a grown file (e.g. a torn
    last line since completed by its writer) is not even hashed; the sha256 of the rest is
    computed two files at a time."""
    if not files:
        return None
    prev = conn.execute(
        """SELECT file, source, bytes, fingerprint, lines, loaded, duplicates, quarantined,
                  status, first_day, last_day
        FROM raw.load_manifest
        WHERE source IN (SELECT unnest($sources))
          AND TRY_CAST(regexp_extract(file, 'dt=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) AS DATE)
              BETWEEN $start AND $end
        QUALIFY row_number() OVER (PARTITION BY file ORDER BY loaded_at DESC, run_id DESC) = 1""",
        {"sources": list(sources), "start": start, "end": end},
    ).fetchall()
    by_file = {r[0]: r for r in prev}
    if set(by_file) != {str(f) for f in files}:
        return None
    for f in files:
        row = by_file[str(f)]
        if row[8] not in ("loaded", "unchanged"):
            return None
        try:
            if f.stat().st_size != row[2]:
                return None
        except OSError:
            return None
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            hashes = list(pool.map(fingerprint_of, files))
        except OSError:
            return None
    if any(h != by_file[str(f)][3] for f, h in zip(files, hashes, strict=True)):
        return None
    return [by_file[str(f)] for f in files]


def record_unchanged(
    conn: duckdb.DuckDBPyConnection,
    prev: list[tuple[Any, ...]],
    run_id: str,
    start: dt.date,
    end: dt.date,
    sources: tuple[str, ...],
) -> None:
    """A load that found every file as last loaded: its rows, rejects and load stats stay;
    each file gets a manifest row with status `unchanged` and the counts of its last load
    (so every line is still accounted for), and TEMP `_files` / `_rejects` describe it like
    a load that read the files (for the load's totals)."""
    conn.executemany(
        "INSERT INTO _files VALUES (?, ?, ?, ?, ?, ?, 'unchanged', NULL)",
        [(r[0], r[1], folder_day(Path(r[0])), r[2], r[3], r[4]) for r in prev],
    )
    conn.execute(
        "INSERT INTO _rejects SELECT * FROM raw.rejected_records "
        "WHERE source IN (SELECT unnest($sources)) AND day BETWEEN $start AND $end",
        {"sources": list(sources), "start": start, "end": end},
    )
    conn.executemany(
        "INSERT INTO raw.load_manifest (run_id, loaded_at, source, provider, file, bytes, "
        "fingerprint, lines, loaded, duplicates, quarantined, out_of_scope, out_of_scope_usd, "
        "status, reason, first_day, last_day) VALUES (?, CAST(now() AT TIME ZONE 'UTC' AS "
        "TIMESTAMP), ?, NULL, ?, ?, ?, ?, ?, ?, ?, 0, 0, 'unchanged', NULL, ?, ?)",
        [(run_id, r[1], r[0], r[2], r[3], r[4], r[5], r[6], r[7], r[9], r[10]) for r in prev],
    )


def new_run_id() -> str:
    return f"local-{uuid.uuid4()}"
