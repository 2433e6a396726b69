-- Record a newly found alert; an alert already in the ledger is left untouched.
INSERT INTO marts.alerts (alert_id, created_at, kind, scope, period, severity, message, payload)
VALUES ($alert_id, $created_at, $kind, $scope, $period, $severity, $message, $payload)
ON CONFLICT DO NOTHING
