-- Requests of the period by where their token usage came from: provider (as reported),
-- estimated (no usage in the answer) or clamped (out-of-range usage bounded by the router).
SELECT coalesce(usage_source, 'provider') AS usage_source, count(*) AS requests,
       coalesce(sum(provider_usd), 0) AS provider_usd
FROM staging.requests
WHERE day BETWEEN $start AND $end
GROUP BY ALL
ORDER BY 1
