-- Persist the run's log gaps (inside the reconciliation transaction).
DELETE FROM marts.reconciliation_log_gaps WHERE day BETWEEN $start AND $end;
INSERT INTO marts.reconciliation_log_gaps
SELECT g.day, g.writer, g.gap_start, g.gap_end, g.hours, g.typical_lines_per_hour, g.active_hours,
       coalesce((SELECT CAST(CAST(CAST(sum(w.provider_usd) * 1000000000 AS HUGEINT) * g.hours
                                      // g.active_hours AS DECIMAL(38, 0))
                             * CAST(0.000000001 AS DECIMAL(38, 9)) AS DECIMAL(38, 9))
                 FROM _rc_writer_hours w
                 WHERE w.day = g.day AND w.writer = g.writer AND w.credential = 'byok'), 0)
FROM _rc_gaps g;
