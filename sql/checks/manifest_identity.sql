-- The latest load of every log file whose dt= folder is in [$start, $end], for $sources:
-- file, lines, loaded, duplicates, quarantined, out_of_scope, status, reason.
SELECT file, lines, loaded, duplicates, quarantined, out_of_scope, status, reason
FROM raw.load_manifest
WHERE source IN (SELECT unnest($sources))
  AND TRY_CAST(regexp_extract(file, 'dt=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) AS DATE)
      BETWEEN $start AND $end
QUALIFY row_number() OVER (PARTITION BY file ORDER BY loaded_at DESC, run_id DESC) = 1
ORDER BY file
