-- One row per request_id within [$start, $end] (run only when duplicates exist). At-least-once
-- shippers repeat lines, also in other files or folders: keep the copy filed under its own UTC
-- day, then the first day, file and time.
DELETE FROM staging.requests
WHERE rowid IN (
    SELECT rowid FROM staging.requests
    WHERE day BETWEEN $start AND $end
    QUALIFY row_number() OVER (
        PARTITION BY request_id
        ORDER BY (CAST(ts AS DATE) = day) DESC, day, source_file, ts
    ) > 1
);
