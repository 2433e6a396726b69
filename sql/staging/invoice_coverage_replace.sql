-- Replace the days [$start, $end] of staging.invoice_coverage from the current invoice files:
-- arrived for the days a loaded file covers, unreadable for the days a refused file was about.
DELETE FROM staging.invoice_coverage WHERE day BETWEEN $start AND $end;
INSERT INTO staging.invoice_coverage
SELECT DISTINCT day, provider, account, status, file FROM raw.invoice_file_coverage
WHERE day BETWEEN $start AND $end
ORDER BY day, provider, account NULLS FIRST, status, file;
