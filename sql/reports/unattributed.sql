-- Invoice and statement cost no logged request explains, per source x provider x account x
-- upstream model x reason.
SELECT
    source,
    reason,
    provider,
    account,
    upstream_model,
    count(DISTINCT day) AS days,
    min(day) AS first_day,
    max(day) AS last_day,
    sum(billed_usd) AS billed_usd
FROM marts.unattributed_usage
WHERE day BETWEEN $start AND $end
GROUP BY ALL
ORDER BY billed_usd DESC, provider, account, upstream_model
LIMIT 50
