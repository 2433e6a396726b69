-- Daily spend per API key x workload x model x BYOK key x provider between $start and $end:
-- the grain anomaly detection aggregates from (per dimension) and explains with (drivers).
SELECT day, api_key_id, workload, model, key_id, provider, SUM(total_usd) AS spend
FROM marts.split_billing_daily
WHERE day BETWEEN $start AND $end
GROUP BY ALL
