-- How much of the period's variance each likely cause explains (cells that did not match;
-- missing and unreadable invoices have no variance yet and are counted by expected cost).
SELECT
    likely_cause,
    count(*) AS cells,
    count(DISTINCT day) AS days,
    coalesce(sum(variance_usd), 0) AS variance_usd,
    coalesce(sum(abs(variance_usd)), 0) AS abs_variance_usd,
    coalesce(sum(expected_usd), 0) AS expected_usd
FROM marts.reconciliation_daily
WHERE day BETWEEN $start AND $end AND status <> 'matched'
GROUP BY likely_cause
ORDER BY likely_cause = 'unknown', abs_variance_usd DESC, likely_cause
