-- Copies filed under another day than their UTC day (a shipper re-sent them later), across the
-- edge of [$start, $end]: the copy in its own day folder wins, whichever day is loaded first.
DELETE FROM staging.requests s
WHERE s.day NOT BETWEEN $start AND $end
  AND s.day BETWEEN CAST($start AS DATE) - 1 AND CAST($end AS DATE) + 1
  AND CAST(s.ts AS DATE) <> s.day
  AND s.request_id IN (
        SELECT request_id FROM staging.requests
        WHERE day BETWEEN $start AND $end AND CAST(ts AS DATE) = day);
DELETE FROM staging.requests n
WHERE n.day BETWEEN $start AND $end
  AND CAST(n.ts AS DATE) <> n.day
  AND EXISTS (
        SELECT 1 FROM staging.requests s
        WHERE s.day = CAST(n.ts AS DATE) AND s.request_id = n.request_id
          AND s.day NOT BETWEEN $start AND $end);
