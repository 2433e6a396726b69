"""Incremental invoice loading: which invoice files are new, changed, unchanged or gone, and the
persisted result of parsing each one, so a run parses only what changed.

`sync_invoices` brings the raw.invoice_* tables up to date with the invoices folder:
- a file whose size and mtime match what was recorded is unchanged without being read; else
  its sha256 decides (same fingerprint = unchanged);
- a new or changed file is parsed whole (`parse_file`); its lines replace the previous
  version's in raw.invoice_lines, or, when any part of it is unreadable, the file is refused:
  none of its lines count, one raw.rejected_records row names the line and the reason, and
  the days it was about are covered `unreadable`;
- a file that disappeared stops counting (manifest status `removed`);
- the same charge in several current files (a re-fetched export) counts once: the LATER file
  wins (rule below) and the other copies are marked `x_SupersededBy` (`x_IdenticalCopy` when
  they bill the same amounts);
- every day a new, changed or removed file touches that staging already holds is recorded in
  raw.invoice_pending_days until it is rebuilt (`changed_invoice_days`).

"Later" is deterministic and needs nothing but the files: within one provider folder, the file
whose path relative to that folder sorts last wins (name re-fetches so they sort after the
original: a dated sub-folder, or a suffix such as `_refetch`), then the larger sha256.
A charge's identity is provider, account, charge period (bucket) start and end, category and
class, SKU / line item, token type, model, statement provider, resource and service tier.

Every call writes one raw.load_manifest row per file (lines = loaded + duplicates +
quarantined + out_of_scope).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import uuid
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from routing_core.config import LedgerConfig

from .invoices import (
    InvoiceError,
    InvoiceFile,
    ParsedFile,
    create_target,
    discover,
    parse_file,
)

UNREADABLE = "unreadable"  # fingerprint of a file that could not be read
CHARGE_KEY = (
    "x_Provider, x_Account, ChargePeriodStart, ChargePeriodEnd, ChargeCategory, ChargeClass, "
    "SkuMeter, x_TokenType, x_UpstreamModel, x_Model, x_StatementProvider, ResourceId, "
    "x_ServiceTier"
)


@dataclass
class SyncResult:
    """What one `sync_invoices` call did."""

    files: int = 0
    parsed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    changed_days: list[dt.date] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _refused_lines(path: Path, fmt: str) -> int:
    """Input lines of a refused file, so its lines are counted quarantined: data rows (CSV),
    items (JSON that parses: results of every bucket, or statement rows), else non-blank
    text lines."""
    if path.name.lower().endswith(".gz"):
        try:
            with gzip.open(path, "rb") as fh:
                return max(sum(1 for line in fh if line.strip()) - 1, 0)
        except (OSError, EOFError, zlib.error):
            return 0
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    text = data.decode("utf-8", "replace")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
            items = doc["data"] if isinstance(doc, dict) else None
            if isinstance(items, list):
                if fmt == "openrouter_activity":
                    return len(items)
                return sum(
                    len(b["results"])
                    if isinstance(b, dict) and isinstance(b.get("results"), list)
                    else 1
                    for b in items
                )
        except (ValueError, RecursionError):
            pass
        return sum(1 for line in text.splitlines() if line.strip())
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception:  # an unreadable Parquet file has no countable rows
            return 0
    return max(sum(1 for line in text.splitlines() if line.strip()) - 1, 0)


def _rank_files(files: list[tuple[str, str, str]], root: Path) -> dict[str, int]:
    """file -> rank (higher wins) from (file, provider, fingerprint)."""

    def key(t: tuple[str, str, str]) -> tuple[str, str, str]:
        file, provider, fp = t
        try:
            rel = str(Path(file).relative_to(root / provider))
        except ValueError:
            rel = file
        return (provider, rel, fp)

    return {t[0]: i for i, t in enumerate(sorted(files, key=key))}


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def sync_invoices(
    conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig, run_id: str | None = None
) -> SyncResult:
    """Parse the new and changed invoice files, forget the removed ones, re-rank superseded
    charges, note the days to rebuild, and write the manifest. Idempotent: a second call with
    nothing changed parses nothing and changes nothing but the manifest's `unchanged` rows."""
    from pipeline.loads import ensure_tables, transaction  # loads imports this module

    ensure_tables(conn)
    run_id = run_id or f"local-{uuid.uuid4()}"
    root = cfg.invoices_dir
    found = discover(cfg, root)
    prev = {
        r[0]: r
        for r in conn.execute(
            "SELECT file, bytes, mtime_ns, fingerprint, status, source FROM raw.invoice_files"
        ).fetchall()
    }
    res = SyncResult(files=len(found))
    todo: list[tuple[InvoiceFile, int, int, str]] = []
    touched: list[tuple[InvoiceFile, int, int, str]] = []  # unchanged bytes, new mtime
    present: set[str] = set()
    for f in found:
        name = str(f.path)
        try:
            st = f.path.stat()
        except OSError:
            continue  # vanished since the listing (or a dangling symlink): removed below
        present.add(name)
        inside = _inside(f.path, root)
        if not inside:
            f = InvoiceFile(  # noqa: PLW2901
                f.path,
                f.provider,
                f.source,
                f.fmt,
                f.provider_cfg,
                problem=f"{f.path}: leads outside the invoices folder {root} (a symlink?); "
                "copy the file into the folder instead",
            )
        p = prev.get(name)
        # A file now leading outside the folder is never taken as unchanged while it loaded.
        if p and not inside and p[4] != "refused":
            p = None
        if p and p[1] == st.st_size and p[2] == st.st_mtime_ns and p[3] != UNREADABLE:
            res.unchanged += 1
            continue
        try:
            fp = _sha256(f.path)
        except OSError:  # e.g. no permission: refused by the parse below, retried every run
            fp = UNREADABLE
        if p and p[3] == fp:
            res.unchanged += 1
            touched.append((f, st.st_size, st.st_mtime_ns, fp))
            continue
        todo.append((f, st.st_size, st.st_mtime_ns, fp))
    removed = sorted(set(prev) - present)

    parsed: list[tuple[InvoiceFile, int, int, str, ParsedFile]] = []
    refused: list[tuple[InvoiceFile, int, int, str, InvoiceError]] = []
    conn.execute("CREATE OR REPLACE TEMP TABLE _inv_new AS SELECT * FROM raw.invoice_lines LIMIT 0")
    for f, size, mtime, fp in todo:
        try:
            pf = parse_file(conn, f, cfg, "_inv_one")
        except InvoiceError as e:
            refused.append((f, size, mtime, fp, e))
            continue
        conn.execute("INSERT INTO _inv_new BY NAME SELECT * FROM _inv_one")
        parsed.append((f, size, mtime, fp, pf))
    if todo:
        create_target(conn, "_inv_one")  # free the last file's rows

    now = _now()
    names = [str(f.path) for f, *_ in todo] + removed
    with transaction(conn):
        touched_days = {n: _old_days(conn, n) for n in names}  # the previous version's days
        for table, col in (
            ("raw.invoice_lines", "x_SourceFile"),
            ("raw.invoice_file_coverage", "file"),
            ("raw.invoice_files", "file"),
        ):
            conn.execute(f"DELETE FROM {table} WHERE {col} IN (SELECT unnest($f))", {"f": names})
        conn.execute(
            "DELETE FROM raw.rejected_records WHERE source IN ('invoices', 'statement') "
            "AND file IN (SELECT unnest($f))",
            {"f": names},
        )
        conn.execute("INSERT INTO raw.invoice_lines SELECT * FROM _inv_new")
        for f, size, mtime, fp, pf in parsed:
            _record_file(conn, f, size, mtime, fp, "loaded", None, pf.lines, pf.rows, pf)
            cov = [(str(f.path), d, f.provider, a, "arrived") for d, a in pf.coverage]
            if cov:
                conn.executemany(
                    "INSERT INTO raw.invoice_file_coverage VALUES (?, ?, ?, ?, ?)", cov
                )
            touched_days[str(f.path)] |= _old_days(conn, str(f.path))
        for f, size, mtime, fp, e in refused:
            lines = _refused_lines(f.path, f.fmt)
            if not e.days:  # nothing readable: the days its previous version was about
                e.days = sorted(touched_days.get(str(f.path), set()))
            reason = refusal_reason(f.path, e)
            _record_file(conn, f, size, mtime, fp, "refused", reason, lines, 0, None, e.days)
            if e.days:
                conn.executemany(
                    "INSERT INTO raw.invoice_file_coverage VALUES (?, ?, ?, NULL, 'unreadable')",
                    [(str(f.path), d, f.provider) for d in e.days],
                )
            touched_days[str(f.path)] |= set(e.days)
            _reject(conn, f, e, now)
        for f, size, mtime, _fp in touched:
            conn.execute(
                "UPDATE raw.invoice_files SET bytes = ?, mtime_ns = ? WHERE file = ?",
                [size, mtime, str(f.path)],
            )
        if names:
            _rerank(conn, root)
        pending = [
            (d, n, "removed" if n in removed else "changed" if n in prev else "new", now)
            for n, days in touched_days.items()
            for d in sorted(days)
        ]
        if pending:
            conn.execute(
                "CREATE OR REPLACE TEMP TABLE _inv_pend AS SELECT * FROM raw.invoice_pending_days LIMIT 0"
            )
            conn.executemany("INSERT INTO _inv_pend VALUES (?, ?, ?, ?)", pending)
            conn.execute(
                "INSERT INTO raw.invoice_pending_days SELECT * FROM _inv_pend "
                "WHERE day IN (SELECT day FROM raw.invoice_staged_days)"
            )
        _manifest(conn, run_id, now, {str(f.path) for f, *_ in todo}, removed, prev)
    res.parsed = [str(f.path) for f, *_ in parsed]
    res.refused = [str(f.path) for f, *_ in refused]
    res.removed = removed
    res.changed_days = sorted({d for days in touched_days.values() for d in days})
    return res


def refusal_reason(path: Path, e: InvoiceError) -> str:
    """`<reason code> at <file>:<line>: <what is wrong>` for the manifest and the checks."""
    where = f"{path}:{e.line}" if e.line else str(path)
    text = str(e).removeprefix(f"{path}: ")
    if e.line:
        text = text.removeprefix(f"line {e.line}: ")
    return f"{e.reason} at {where}: {text}"


def _old_days(conn: duckdb.DuckDBPyConnection, name: str) -> set[dt.date]:
    """The days a file's current lines and coverage touch."""
    rows = conn.execute(
        "SELECT DISTINCT day FROM raw.invoice_lines WHERE x_SourceFile = $f "
        "UNION SELECT DISTINCT day FROM raw.invoice_file_coverage WHERE file = $f",
        {"f": name},
    ).fetchall()
    return {d for (d,) in rows}


def _record_file(
    conn: duckdb.DuckDBPyConnection,
    f: InvoiceFile,
    size: int,
    mtime: int,
    fp: str,
    status: str,
    reason: str | None,
    lines: int,
    rows: int,
    pf: ParsedFile | None,
    days: list[dt.date] | None = None,
) -> None:
    first = pf.first_day if pf else (min(days) if days else None)
    last = pf.last_day if pf else (max(days) if days else None)
    conn.execute(
        "INSERT INTO raw.invoice_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
        [
            str(f.path),
            f.provider,
            f.source,
            size,
            mtime,
            fp,
            status,
            reason,
            lines,
            rows,
            pf.out_of_scope if pf else 0,
            pf.out_of_scope_usd if pf else Decimal(0),
            first,
            last,
        ],
    )


def _reject(
    conn: duckdb.DuckDBPyConnection, f: InvoiceFile, e: InvoiceError, now: dt.datetime
) -> None:
    """One raw.rejected_records row for a refused file: the offending line and the reason.
    Its day is the first day the file was about, else the UTC day it was refused."""
    cols = {
        c
        for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'rejected_records'"
        ).fetchall()
    }
    values = {
        "day": e.days[0] if e.days else now.date(),
        "source": f.source,
        "file": str(f.path),
        "line": e.line,
        "error": refusal_reason(f.path, e),
        "raw_text": e.raw_text,
        "torn": e.reason == "truncated",
        "reason": e.reason,
    }
    values = {k: v for k, v in values.items() if k in cols}
    conn.execute(
        f"INSERT INTO raw.rejected_records ({', '.join(values)}) "
        f"VALUES ({', '.join('?' * len(values))})",
        list(values.values()),
    )


def _rerank(conn: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Mark, for every charge in more than one current file, every copy but the winner's."""
    files = conn.execute(
        "SELECT file, provider, fingerprint FROM raw.invoice_files WHERE status = 'loaded'"
    ).fetchall()
    ranks = _rank_files([tuple(r) for r in files], root)
    conn.execute("CREATE OR REPLACE TEMP TABLE _inv_rank (file VARCHAR, rank BIGINT)")
    if ranks:
        conn.executemany("INSERT INTO _inv_rank VALUES (?, ?)", list(ranks.items()))
    conn.execute(
        f"""
        UPDATE raw.invoice_lines l SET x_SupersededBy = w.winner, x_IdenticalCopy = w.identical
        FROM (
            WITH per_file AS (
                SELECT {CHARGE_KEY}, x_SourceFile AS file, any_value(r.rank) AS rank, count(*) AS n,
                       sum(hash(BilledCost, EffectiveCost, ListCost, ConsumedQuantity)::HUGEINT) AS h
                FROM raw.invoice_lines JOIN _inv_rank r ON r.file = x_SourceFile
                GROUP BY ALL
            ), multi AS (
                SELECT *, arg_max(file, rank) OVER k AS winner,
                       arg_max(n, rank) OVER k AS wn, arg_max(h, rank) OVER k AS wh,
                       count(*) OVER k AS copies
                FROM per_file
                WINDOW k AS (PARTITION BY {CHARGE_KEY})
            )
            SELECT {CHARGE_KEY}, file, winner, (n = wn AND h = wh) AS identical
            FROM multi WHERE copies > 1 AND file <> winner
        ) w
        WHERE l.x_SourceFile = w.file
          AND {" AND ".join(f"l.{c.strip()} IS NOT DISTINCT FROM w.{c.strip()}" for c in CHARGE_KEY.split(","))}
        """
    )
    conn.execute(
        "UPDATE raw.invoice_lines SET x_SupersededBy = NULL, x_IdenticalCopy = NULL "
        "WHERE x_SupersededBy IS NOT NULL AND x_SupersededBy NOT IN (SELECT file FROM _inv_rank)"
    )
    conn.execute(
        """
        UPDATE raw.invoice_files f SET duplicates = coalesce(d.n, 0)
        FROM (SELECT file FROM raw.invoice_files) a
        LEFT JOIN (
            SELECT x_SourceFile AS file, count(*) AS n FROM (
                SELECT x_SourceFile, x_SourceLine FROM raw.invoice_lines
                GROUP BY ALL HAVING bool_and(x_SupersededBy IS NOT NULL)
            ) GROUP BY 1
        ) d USING (file)
        WHERE f.file = a.file
        """
    )


def _manifest(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    now: dt.datetime,
    parsed: set[str],
    removed: list[str],
    prev: dict[str, tuple],
) -> None:
    """One raw.load_manifest row per current file (loaded | refused | unchanged) and per file
    that disappeared (removed, nothing counted)."""
    conn.execute(
        """
        INSERT INTO raw.load_manifest (run_id, loaded_at, source, provider, file, bytes,
            fingerprint, lines, loaded, duplicates, quarantined, out_of_scope, out_of_scope_usd,
            status, reason, first_day, last_day)
        SELECT $run_id, $now, source, provider, file, bytes, fingerprint, lines,
               CASE WHEN status = 'refused' THEN 0 ELSE lines - duplicates - out_of_scope END,
               CASE WHEN status = 'refused' THEN 0 ELSE duplicates END,
               CASE WHEN status = 'refused' THEN lines ELSE 0 END,
               out_of_scope, out_of_scope_usd,
               CASE WHEN file NOT IN (SELECT unnest($parsed)) THEN 'unchanged' ELSE status END,
               reason, first_day, last_day
        FROM raw.invoice_files ORDER BY file
        """,
        {"run_id": run_id, "now": now, "parsed": sorted(parsed) or [""]},
    )
    if removed:
        conn.executemany(
            "INSERT INTO raw.load_manifest (run_id, loaded_at, source, provider, file, bytes, "
            "fingerprint, lines, loaded, duplicates, quarantined, status, reason) "
            "VALUES (?, ?, ?, NULL, ?, 0, ?, 0, 0, 0, 0, 'removed', ?)",
            [
                (
                    run_id,
                    now,
                    prev[f][5],
                    f,
                    prev[f][3],
                    "the file is gone: its lines stop counting",
                )
                for f in removed
            ],
        )


def changed_invoice_days(conn: duckdb.DuckDBPyConnection, cfg: LedgerConfig) -> list[dt.date]:
    """Bring the invoice state up to date (parsing only new or changed files) and return every
    already-built day that a new, changed or removed invoice file touched and that has not been
    rebuilt since: the days a run must re-materialize, whatever its --start/--end."""
    sync_invoices(conn, cfg)
    return [
        d
        for (d,) in conn.execute(
            "SELECT DISTINCT day FROM raw.invoice_pending_days ORDER BY day"
        ).fetchall()
    ]


def pending_invoice_days(cfg: LedgerConfig) -> list[dt.date]:
    """`changed_invoice_days` on the config's DuckDB file (opened and closed here); [] when the
    file does not exist yet or another process holds it (the next call picks the days up)."""
    path = cfg.duckdb_path
    if not Path(path).exists():
        return []
    from pipeline.settings import DEFAULT_MEMORY_LIMIT, MEMORY_ENV

    # The same bounds as the run's connection: a changed FOCUS export may be parsed here.
    limit = os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY_LIMIT
    settings = {"memory_limit": limit, "preserve_insertion_order": False}
    try:
        with duckdb.connect(str(path), config=settings) as conn:
            return changed_invoice_days(conn, cfg)
    except duckdb.IOException:
        return []


def widen_for_invoices(
    cfg: LedgerConfig,
    start: dt.date,
    end: dt.date,
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> tuple[dt.date, dt.date, list[dt.date]]:
    """The day range to run so that it also holds every day whose invoices changed since it was
    built (`pending_invoice_days`), kept within [first, last] (the partitions that exist):
    (start, end, every such day, inside the given range or not). The range is widened to cover
    them, since a run is one contiguous range of days."""
    pending = [
        d
        for d in pending_invoice_days(cfg)
        if (first is None or d >= first) and (last is None or d <= last)
    ]
    if not pending:
        return start, end, []
    return min(start, pending[0]), max(end, pending[-1]), pending
