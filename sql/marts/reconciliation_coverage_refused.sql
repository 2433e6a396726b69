-- Days of invoice files whose latest load was refused (all-or-nothing): unreadable coverage.
INSERT INTO _rc_coverage
WITH latest AS (
    SELECT * FROM raw.load_manifest
    WHERE source = 'invoices' AND provider IS NOT NULL AND provider <> '_platform'
      AND first_day IS NOT NULL AND status <> 'unchanged'  -- unchanged: the earlier verdict stands
    QUALIFY row_number() OVER (PARTITION BY provider, file ORDER BY loaded_at DESC, run_id DESC) = 1
)
SELECT CAST(d.day AS DATE), l.provider, NULL, 'unreadable', l.file
FROM latest l, LATERAL (SELECT unnest(generate_series(l.first_day, coalesce(l.last_day, l.first_day), INTERVAL 1 DAY)) AS day) d
WHERE l.status = 'refused' AND CAST(d.day AS DATE) BETWEEN $wstart AND $wend;
