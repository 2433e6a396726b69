-- Reconciliation cells whose variance no cause explains (likely_cause = 'unknown'), per day,
-- for the reconciliation alert rule.
SELECT day, provider, account, upstream_model, expected_usd, coalesce(billed_usd, 0) AS billed_usd,
       variance_usd, status, explanation
FROM marts.reconciliation_daily
WHERE day BETWEEN $start AND $end AND likely_cause = 'unknown' AND variance_usd IS NOT NULL
ORDER BY day, abs(variance_usd) DESC, provider, account, upstream_model
