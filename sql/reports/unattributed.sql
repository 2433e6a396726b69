-- Invoice and statement cost no logged request explains, per source x provider x account x
-- upstream model x likely cause, with the explanation of its largest day.
SELECT
    source,
    coalesce(likely_cause, 'unknown') AS likely_cause,
    provider,
    account,
    upstream_model,
    model,
    count(DISTINCT day) AS days,
    min(day) AS first_day,
    max(day) AS last_day,
    sum(billed_usd) AS billed_usd,
    (list(coalesce(explanation, reason) ORDER BY abs(billed_usd) DESC, day DESC))[1] AS explanation
FROM marts.unattributed_usage
WHERE day BETWEEN $start AND $end
GROUP BY ALL
ORDER BY abs(sum(billed_usd)) DESC, provider, account, upstream_model
LIMIT 50
