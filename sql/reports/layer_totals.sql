-- Headline totals for [$start, $end] by billing layer. The provider layer is what the provider
-- bills on the customer's own accounts: invoiced where the invoice is in, the router's
-- estimate where it is not yet (status = 'estimated').
SELECT
    coalesce(sum(total_usd - platform_fee_usd - platform_credits_usd), 0) AS provider_usd,
    coalesce(sum(platform_fee_usd), 0) AS fee_usd,
    coalesce(sum(platform_credits_usd), 0) AS credits_usd,
    coalesce(sum(total_usd), 0) AS total_usd,
    coalesce(sum(total_usd) FILTER (WHERE status = 'estimated'), 0) AS estimated_usd,
    coalesce(sum(requests), 0) AS requests,
    count(DISTINCT day) AS days
FROM marts.split_billing_daily
WHERE day BETWEEN $start AND $end
