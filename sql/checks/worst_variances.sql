-- The reconciliation cells furthest off on one day, for the per-day variance check's metadata.
SELECT day, provider, account, upstream_model, expected_usd, billed_usd, variance_usd, status,
       likely_cause
FROM marts.reconciliation_daily
WHERE day = $day AND status NOT IN ('matched', 'missing_invoice')
ORDER BY abs(coalesce(variance_usd, expected_usd)) DESC, provider, account, upstream_model
LIMIT 10
