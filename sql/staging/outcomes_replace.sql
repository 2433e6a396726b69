-- Replace the days [$start, $end] of staging.outcomes from TEMP _out_in, one row per event_id.
DELETE FROM staging.outcomes WHERE day BETWEEN $start AND $end;
INSERT INTO staging.outcomes
SELECT day, event_id, CAST(ts AS TIMESTAMP), request_id, workflow_id, accepted, score, reason,
       filename
FROM _out_in
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY day, filename, ts) = 1;
