-- Split billing by one dimension ($dim: environment | app | workload | api_key | provider |
-- model) for [$start, $end]. Invoice cost no logged request explains has no API key (NULL or
-- '(unattributed)') and is labelled so, never dropped; a logged request without a value for
-- the dimension (no workload given, no provider because every route failed) is '(none)'.
WITH rows AS (
    SELECT
        CASE $dim
            WHEN 'environment' THEN environment
            WHEN 'app' THEN app
            WHEN 'workload' THEN workload
            WHEN 'api_key' THEN api_key_id
            WHEN 'provider' THEN provider
            WHEN 'model' THEN model
        END AS label,
        *
    FROM marts.split_billing_daily
    WHERE day BETWEEN $start AND $end
)
SELECT
    coalesce(
        nullif(label, ''),
        CASE WHEN api_key_id IS NULL OR api_key_id = '(unattributed)' THEN '(unattributed)' ELSE '(none)' END
    ) AS label,
    sum(requests) AS requests,
    sum(total_usd - platform_fee_usd - platform_credits_usd) AS provider_usd,
    sum(platform_fee_usd) AS fee_usd,
    sum(platform_credits_usd) AS credits_usd,
    sum(total_usd) AS total_usd,
    coalesce(sum(total_usd) FILTER (WHERE status = 'estimated'), 0) AS estimated_usd
FROM rows
GROUP BY 1
ORDER BY total_usd DESC, label
