-- Per day: split billing's provider_billed vs the invoices' Usage lines, and its platform fee +
-- credits vs the statement (only when the statement has arrived). `off` is true when either
-- pair differs by half a cent or more.
WITH split AS (
    SELECT day, coalesce(sum(provider_billed_usd), 0) AS provider_billed,
           sum(platform_fee_usd + platform_credits_usd) AS platform
    FROM marts.split_billing_daily WHERE day BETWEEN $start AND $end GROUP BY day
), inv AS (
    SELECT day,
           coalesce(sum(BilledCost) FILTER (WHERE x_Provider <> '_platform' AND ChargeCategory = 'Usage'), 0) AS invoiced,
           sum(BilledCost) FILTER (WHERE x_Provider = '_platform') AS statement
    FROM staging.invoice_lines WHERE day BETWEEN $start AND $end GROUP BY day
)
SELECT coalesce(s.day, i.day) AS day,
       coalesce(s.provider_billed, 0) AS split_provider_billed,
       coalesce(i.invoiced, 0) AS invoice_usage,
       coalesce(s.platform, 0) AS split_platform,
       i.statement AS statement_usage,
       abs(coalesce(s.provider_billed, 0) - coalesce(i.invoiced, 0)) >= 0.005
       OR (i.statement IS NOT NULL AND abs(coalesce(s.platform, 0) - i.statement) >= 0.005) AS off
FROM split s FULL OUTER JOIN inv i ON s.day = i.day
ORDER BY 1
