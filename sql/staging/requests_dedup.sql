-- One row per request_id within this load. At-least-once shippers repeat lines, also in other
-- files or folders: prefer the copy filed under its own UTC day, then the first file.
CREATE OR REPLACE TEMP TABLE _req_dedup AS
SELECT * FROM _req_new
QUALIFY row_number() OVER (
    PARTITION BY request_id
    ORDER BY (CAST(ts AS DATE) = day) DESC, day, source_file, ts
) = 1;
