SELECT alert_id, delivered_at IS NOT NULL AS delivered FROM marts.alerts
