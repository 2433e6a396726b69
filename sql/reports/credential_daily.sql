-- BYOK vs shared capacity per day, by spend and by requests, over routed traffic only:
-- unattributed invoice cost (no API key) is usage outside the router.
SELECT
    day,
    coalesce(sum(total_usd) FILTER (WHERE credential = 'byok'), 0) AS byok_usd,
    coalesce(sum(total_usd) FILTER (WHERE credential = 'shared'), 0) AS shared_usd,
    coalesce(sum(total_usd) FILTER (WHERE credential IS NULL OR credential NOT IN ('byok', 'shared')), 0)
        AS other_usd,
    coalesce(sum(requests) FILTER (WHERE credential = 'byok'), 0) AS byok_requests,
    coalesce(sum(requests) FILTER (WHERE credential = 'shared'), 0) AS shared_requests
FROM marts.split_billing_daily
WHERE day BETWEEN $start AND $end
  AND api_key_id IS NOT NULL AND api_key_id <> '(unattributed)'
GROUP BY day
ORDER BY day
