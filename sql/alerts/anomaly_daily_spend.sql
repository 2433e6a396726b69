-- Daily spend per API key x workload x model x BYOK key x provider between $start and $end:
-- the grain anomaly detection aggregates from (per dimension) and explains with (drivers).
-- Ordered: the row order decides the order alerts are listed in and how driver ties break, and
-- an aggregate's order is not stable across runs (it came out differently under load).
SELECT day, api_key_id, workload, model, key_id, provider, SUM(total_usd) AS spend
FROM marts.split_billing_daily
WHERE day BETWEEN $start AND $end
GROUP BY ALL
ORDER BY day, api_key_id NULLS FIRST, workload NULLS FIRST, model NULLS FIRST,
    key_id NULLS FIRST, provider NULLS FIRST
