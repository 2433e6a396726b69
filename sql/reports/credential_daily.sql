-- BYOK vs shared capacity per day, by spend and by requests. Rows without a credential are
-- invoice cost outside the router (unattributed).
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
GROUP BY day
ORDER BY day
