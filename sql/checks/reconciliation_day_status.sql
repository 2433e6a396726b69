-- Per day of the run: reconciliation cells by status and the variance no cause explains.
SELECT day,
       count(*) FILTER (WHERE status = 'matched') AS matched,
       count(*) FILTER (WHERE status IN ('over_billed', 'under_billed')) AS off,
       count(*) FILTER (WHERE status = 'unlogged_usage') AS unlogged_usage,
       count(*) FILTER (WHERE status = 'missing_invoice') AS missing_invoice,
       count(*) FILTER (WHERE status = 'invoice_unreadable') AS invoice_unreadable,
       coalesce(sum(abs(variance_usd)) FILTER (WHERE status <> 'matched'), 0) AS variance_usd,
       coalesce(sum(abs(variance_usd)) FILTER (WHERE likely_cause = 'unknown'), 0) AS unexplained_usd
FROM marts.reconciliation_daily
WHERE day BETWEEN $start AND $end
GROUP BY day
ORDER BY day
