"""Checks on the invoice load: every refused invoice file is named (a warning: the other files
loaded and reconciliation shows `invoice_unreadable`), and every invoice file's lines add up
(blocking: lines = loaded + duplicates + quarantined + out_of_scope). Both are evaluated inside
the `staging/invoice_lines` step (`check_specs=` in assets.py)."""

from collections.abc import Iterator

import dagster as dg
import duckdb

INVOICES = dg.AssetKey(["staging", "invoice_lines"])

FILES_READABLE = dg.AssetCheckSpec(
    "invoice_files_readable",
    asset=INVOICES,
    blocking=False,
    description="No current invoice file is refused, whatever days it is about (the check is "
    "not per day: re-running a clean day must not hide a refused file). A refused file counted "
    "nothing (all or nothing per file); fix or re-fetch it and run again.",
)
LINES_ACCOUNTED_FOR = dg.AssetCheckSpec(
    "invoice_lines_accounted_for",
    asset=INVOICES,
    blocking=True,
    description="For the latest load of every invoice and statement file: lines = loaded + "
    "duplicates + quarantined + out_of_scope, and the loaded lines are in raw.invoice_lines.",
)
INVOICE_CHECKS = [FILES_READABLE, LINES_ACCOUNTED_FOR]


def invoice_checks(conn: duckdb.DuckDBPyConnection) -> Iterator[dg.AssetCheckResult]:
    """The results of `INVOICE_CHECKS` (over every invoice file, not only the run's days)."""
    yield files_readable(conn)
    yield lines_accounted_for(conn)


def files_readable(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    rows = conn.execute(
        "SELECT file, reason, first_day, last_day FROM raw.invoice_files "
        "WHERE status = 'refused' ORDER BY first_day NULLS FIRST, file"
    ).fetchall()
    listing = "\n".join(
        f"- `{reason}` (days {first or '?'}..{last or '?'})" for _f, reason, first, last in rows
    )
    return dg.AssetCheckResult(
        asset_key=INVOICES,
        check_name=FILES_READABLE.name,
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(rows)} invoice file(s) refused: {', '.join(f for f, *_ in rows)}"
            if rows
            else "every invoice file loaded"
        ),
        metadata={
            "refused_files": dg.MetadataValue.int(len(rows)),
            "refused": dg.MetadataValue.md(listing or "none"),
        },
    )


def lines_accounted_for(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    bad = conn.execute(
        """
        WITH latest AS (
            SELECT * FROM raw.load_manifest WHERE source IN ('invoices', 'statement')
            QUALIFY row_number() OVER (PARTITION BY file ORDER BY loaded_at DESC) = 1
        ), kept AS (
            SELECT x_SourceFile AS file, count(DISTINCT x_SourceLine) AS n
            FROM raw.invoice_lines GROUP BY 1
        )
        SELECT l.file, l.lines, l.loaded, l.duplicates, l.quarantined, l.out_of_scope,
               coalesce(k.n, 0)
        FROM latest l LEFT JOIN kept k USING (file)
        WHERE l.status <> 'removed' AND (
            l.lines <> l.loaded + l.duplicates + l.quarantined + l.out_of_scope
            OR coalesce(k.n, 0) <> l.loaded + l.duplicates)
        ORDER BY l.file LIMIT 20
        """
    ).fetchall()
    return dg.AssetCheckResult(
        asset_key=INVOICES,
        check_name=LINES_ACCOUNTED_FOR.name,
        passed=not bad,
        metadata={
            "files_off": dg.MetadataValue.int(len(bad)),
            "examples": dg.MetadataValue.md(
                "\n".join(
                    f"- `{f}`: lines {n} vs loaded {lo} + duplicates {d} + quarantined {q} + "
                    f"out of scope {o}; {k} line(s) kept"
                    for f, n, lo, d, q, o, k in bad
                )
                or "none"
            ),
        },
    )
