-- Spend per day and billing layer, for the stacked daily chart.
SELECT
    day,
    sum(total_usd - platform_fee_usd - platform_credits_usd) AS provider_usd,
    sum(platform_fee_usd) AS fee_usd,
    sum(platform_credits_usd) AS credits_usd,
    sum(total_usd) AS total_usd
FROM marts.split_billing_daily
WHERE day BETWEEN $start AND $end
GROUP BY day
ORDER BY day
