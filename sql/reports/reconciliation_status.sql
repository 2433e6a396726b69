-- How the period reconciled: reconciliation cells per status with their money.
SELECT
    status,
    count(*) AS cells,
    coalesce(sum(expected_usd), 0) AS expected_usd,
    coalesce(sum(billed_usd), 0) AS billed_usd,
    coalesce(sum(variance_usd), 0) AS variance_usd
FROM marts.reconciliation_daily
WHERE day BETWEEN $start AND $end
GROUP BY status
ORDER BY status
