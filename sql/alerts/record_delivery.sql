UPDATE marts.alerts
SET attempts = attempts + $attempts, delivered_at = $delivered_at, last_error = $last_error
WHERE alert_id = $alert_id
