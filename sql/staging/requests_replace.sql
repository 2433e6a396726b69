-- Replace the days [$start, $end] of staging.requests with this load (run inside a transaction).
DELETE FROM staging.requests WHERE day BETWEEN $start AND $end;
-- A copy filed under another day (outside this range) loses to a copy filed under its own day.
DELETE FROM staging.requests s
WHERE s.day NOT BETWEEN $start AND $end
  AND s.day BETWEEN CAST($start AS DATE) - 1 AND CAST($end AS DATE) + 1
  AND CAST(s.ts AS DATE) <> s.day
  AND s.request_id IN (SELECT request_id FROM _req_dedup WHERE CAST(ts AS DATE) = day);
INSERT INTO staging.requests SELECT * FROM _req_dedup WHERE CAST(ts AS DATE) = day;
-- Misfiled rows (folder day differs from their UTC day) only when their own day lacks them.
INSERT INTO staging.requests
SELECT n.* FROM _req_dedup n
WHERE CAST(n.ts AS DATE) <> n.day
  AND NOT EXISTS (
        SELECT 1 FROM staging.requests s
        WHERE s.day = CAST(n.ts AS DATE) AND s.request_id = n.request_id
          AND s.day NOT BETWEEN $start AND $end
  );
