-- Alerts recorded but not yet delivered (new ones and earlier failures), oldest first.
SELECT alert_id, kind, scope, period, severity, message, CAST(payload AS VARCHAR), attempts
FROM marts.alerts
WHERE delivered_at IS NULL
ORDER BY created_at, alert_id
