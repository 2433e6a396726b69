"""Checks on the invoice load: every refused invoice file is named (a warning: the other files
loaded and reconciliation shows `invoice_unreadable`), and every invoice file's lines add up
(blocking: lines = loaded + duplicates + quarantined + out_of_scope)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

INVOICES = dg.AssetKey(["staging", "invoice_lines"])


@dg.asset_check(asset=INVOICES, blocking=False)
def invoice_files_readable(
    context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
) -> dg.AssetCheckResult:
    """No current invoice file is refused, whatever days it is about (the check is not per
    day: re-running a clean day must not hide a refused file). A refused file counted nothing
    (all or nothing per file); fix or re-fetch it and run again."""
    del context
    with duckdb.get_connection() as conn:
        rows = conn.execute(
            "SELECT file, reason, first_day, last_day FROM raw.invoice_files "
            "WHERE status = 'refused' ORDER BY first_day NULLS FIRST, file"
        ).fetchall()
    listing = "\n".join(
        f"- `{reason}` (days {first or '?'}..{last or '?'})" for _f, reason, first, last in rows
    )
    return dg.AssetCheckResult(
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


@dg.asset_check(asset=INVOICES, blocking=True)
def invoice_lines_accounted_for(
    context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
) -> dg.AssetCheckResult:
    """For the latest load of every invoice and statement file: lines = loaded + duplicates +
    quarantined + out_of_scope, and the loaded lines are in raw.invoice_lines."""
    del context
    with duckdb.get_connection() as conn:
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
