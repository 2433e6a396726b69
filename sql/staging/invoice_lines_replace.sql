-- Replace the days [$start, $end] of staging.invoice_lines from the persisted lines of the
-- current invoice files (raw.invoice_lines). A charge re-fetched in a later file counts once:
-- the copies the later file supersedes (x_SupersededBy) are left out.
DELETE FROM staging.invoice_lines WHERE day BETWEEN $start AND $end;
INSERT INTO staging.invoice_lines BY NAME
SELECT * EXCLUDE (x_SupersededBy, x_IdenticalCopy) FROM raw.invoice_lines
WHERE day BETWEEN $start AND $end AND x_SupersededBy IS NULL
ORDER BY x_Provider, x_SourceFile, x_SourceLine, ChargePeriodStart;
