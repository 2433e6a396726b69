-- Ledgers built before staging.requests had usage_source: every request's usage is the provider's.
SELECT 'provider' AS usage_source, count(*) AS requests, coalesce(sum(provider_usd), 0) AS provider_usd
FROM staging.requests
WHERE day BETWEEN $start AND $end
