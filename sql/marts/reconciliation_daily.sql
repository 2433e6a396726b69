-- Expected (logs' provider_usd on BYOK keys) vs billed (invoice Usage lines, corrections
-- included for their ChargePeriod) per day x provider x account x upstream_model.
DELETE FROM marts.reconciliation_daily WHERE day BETWEEN $start AND $end;
INSERT INTO marts.reconciliation_daily
WITH billed AS (
    SELECT day, x_Provider AS provider, x_Account AS account, x_UpstreamModel AS upstream_model,
           sum(BilledCost) AS billed_usd, count(*) AS invoice_lines,
           coalesce(sum(BilledCost) FILTER (WHERE ChargeClass = 'Correction'), 0) AS corrections_usd
    FROM staging.invoice_lines
    WHERE day BETWEEN $start AND $end AND x_Provider <> '_platform' AND ChargeCategory = 'Usage'
    GROUP BY ALL
), expected AS (
    SELECT day, provider, account, upstream_model,
           sum(provider_estimated_usd) AS expected_usd, sum(requests) AS requests,
           string_agg(DISTINCT key_id, ',' ORDER BY key_id) AS key_ids
    FROM intermediate.request_groups
    WHERE day BETWEEN $start AND $end AND credential = 'byok'
    GROUP BY ALL
), arrived AS (
    SELECT DISTINCT day, x_Provider AS provider FROM staging.invoice_lines
    WHERE day BETWEEN $start AND $end AND x_Provider <> '_platform'
), cells AS (
    SELECT coalesce(e.day, b.day) AS day, coalesce(e.provider, b.provider) AS provider,
           coalesce(e.account, b.account) AS account,
           coalesce(e.upstream_model, b.upstream_model) AS upstream_model,
           coalesce(e.expected_usd, 0) AS expected_usd,
           CASE WHEN b.billed_usd IS NOT NULL THEN b.billed_usd
                WHEN a.day IS NOT NULL THEN CAST(0 AS DECIMAL(38, 9)) END AS billed_usd,
           coalesce(e.requests, 0) AS requests, coalesce(b.invoice_lines, 0) AS invoice_lines,
           e.key_ids, coalesce(b.corrections_usd, 0) AS corrections_usd
    FROM expected e
    FULL OUTER JOIN billed b
      ON e.day = b.day AND e.provider = b.provider
     AND e.account IS NOT DISTINCT FROM b.account
     AND e.upstream_model IS NOT DISTINCT FROM b.upstream_model
    LEFT JOIN arrived a ON a.day = coalesce(e.day, b.day) AND a.provider = coalesce(e.provider, b.provider)
)
SELECT day, provider, account, upstream_model, expected_usd, billed_usd,
       billed_usd - expected_usd AS variance_usd,
       CASE WHEN expected_usd <> 0 AND billed_usd IS NOT NULL
            THEN CAST(round(100 * CAST(billed_usd - expected_usd AS DOUBLE) / CAST(expected_usd AS DOUBLE), 4) AS DECIMAL(18, 4)) END,
       CASE WHEN billed_usd IS NULL THEN 'missing_invoice'
            WHEN requests = 0 THEN 'unlogged_usage'
            WHEN abs(billed_usd - expected_usd) <= $tol_usd
              OR abs(billed_usd - expected_usd) * 100 <= abs(expected_usd) * $tol_pct THEN 'matched'
            WHEN billed_usd > expected_usd THEN 'over_billed'
            ELSE 'under_billed' END,
       requests, invoice_lines, key_ids, corrections_usd
FROM cells;
