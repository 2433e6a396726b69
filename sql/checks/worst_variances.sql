-- The reconciliation cells furthest off, for the variance check's metadata.
SELECT day, provider, account, upstream_model, expected_usd, billed_usd, variance_usd, status
FROM marts.reconciliation_daily
WHERE day BETWEEN $start AND $end AND status IN ('over_billed', 'under_billed')
ORDER BY abs(variance_usd) DESC, day, provider
LIMIT 10
