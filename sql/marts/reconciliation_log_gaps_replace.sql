-- Persist the run's log gaps (inside the reconciliation transaction), each with the writer's
-- BYOK provider cost in the hours just before and after it, averaged, times its hours.
DELETE FROM marts.reconciliation_log_gaps WHERE day BETWEEN $start AND $end;
INSERT INTO marts.reconciliation_log_gaps
WITH hourly AS (
    SELECT day, writer, h, CAST(sum(provider_usd) * 1000000000 AS HUGEINT) AS nano
    FROM _rc_writer_hours WHERE credential = 'byok' GROUP BY ALL
)
SELECT g.day, g.writer, g.gap_start, g.gap_end, g.hours, g.typical_lines_per_hour, g.active_hours,
       CAST(CAST((coalesce(b.nano, 0) + coalesce(a.nano, 0)) * g.hours // 2 AS DECIMAL(38, 0))
            * CAST(0.000000001 AS DECIMAL(38, 9)) AS DECIMAL(38, 9))
FROM _rc_gaps g
LEFT JOIN hourly b ON b.day = g.day AND b.writer = g.writer AND b.h = hour(g.gap_start) - 1
LEFT JOIN hourly a ON a.day = g.day AND a.writer = g.writer AND a.h = hour(g.gap_end);
