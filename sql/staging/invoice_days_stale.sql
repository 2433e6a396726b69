-- How many days of [$start, $end] must be rebuilt from the invoice files: never built yet, or
-- touched by a new, changed or removed invoice file since they were built.
SELECT count(*)
FROM (SELECT CAST(unnest(generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY)) AS DATE) AS day) d
WHERE d.day NOT IN (SELECT day FROM raw.invoice_staged_days)
   OR d.day IN (SELECT day FROM raw.invoice_pending_days);
