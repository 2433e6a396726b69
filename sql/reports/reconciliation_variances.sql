-- Every cell that did not match, grouped per provider x account x upstream model x status x
-- likely cause over [$start, $end], largest absolute variance first, with the explanation of
-- its largest day (the evidence: implied factor, first day, suggested account, log gap).
SELECT
    provider,
    account,
    upstream_model,
    status,
    likely_cause,
    count(*) AS days,
    min(day) AS first_day,
    max(day) AS last_day,
    coalesce(sum(expected_usd), 0) AS expected_usd,
    coalesce(sum(billed_usd), 0) AS billed_usd,
    coalesce(sum(variance_usd), 0) AS variance_usd,
    coalesce(sum(abs(variance_usd)), 0) AS abs_variance_usd,
    (list(explanation ORDER BY abs(coalesce(variance_usd, expected_usd)) DESC, day DESC))[1] AS explanation,
    min(cause_first_day) AS cause_first_day,
    arg_max(implied_factor, day) AS last_factor,
    arg_min(implied_factor, day) AS first_factor
FROM marts.reconciliation_daily
WHERE day BETWEEN $start AND $end AND status <> 'matched'
GROUP BY provider, account, upstream_model, status, likely_cause
ORDER BY abs_variance_usd DESC, sum(expected_usd) DESC, provider, account, upstream_model
LIMIT 50
