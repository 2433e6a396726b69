-- Every cell that did not match, grouped per provider x account x upstream model x status over
-- [$start, $end], largest absolute variance first.
SELECT
    provider,
    account,
    upstream_model,
    status,
    count(*) AS days,
    min(day) AS first_day,
    max(day) AS last_day,
    coalesce(sum(expected_usd), 0) AS expected_usd,
    coalesce(sum(billed_usd), 0) AS billed_usd,
    coalesce(sum(variance_usd), 0) AS variance_usd
FROM marts.reconciliation_daily
WHERE day BETWEEN $start AND $end AND status <> 'matched'
GROUP BY ALL
ORDER BY abs(sum(coalesce(variance_usd, 0))) DESC, provider, account, upstream_model
LIMIT 50
