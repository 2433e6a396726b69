-- Alerts recorded but not yet delivered (new ones and earlier failures): critical first, then
-- warning, then info; oldest first within a severity.
SELECT alert_id, kind, scope, period, severity, message, CAST(payload AS VARCHAR), attempts
FROM marts.alerts
WHERE delivered_at IS NULL
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 WHEN 'info' THEN 2 ELSE 3 END,
         created_at, alert_id
