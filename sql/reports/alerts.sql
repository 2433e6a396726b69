-- Alerts whose period overlaps [$start, $end]; period is "<daily|weekly|monthly|day>:<first day>".
WITH a AS (
    SELECT
        *,
        TRY_CAST(split_part(period, ':', 2) AS DATE) AS p_start,
        split_part(period, ':', 1) AS p_kind
    FROM marts.alerts
)
SELECT alert_id, created_at, kind, scope, period, severity, message, delivered_at, attempts,
       last_error
FROM a
WHERE p_start <= $end
  AND CASE p_kind
          WHEN 'monthly' THEN last_day(p_start)
          WHEN 'weekly' THEN p_start + 6
          ELSE p_start
      END >= $start
ORDER BY p_start, kind, scope
LIMIT 200
