-- Reconciliation cells (day x provider x account x upstream_model) for the analysis window
-- [$wstart, $wend]: expected from the logs (BYOK request groups), billed from the invoice's
-- Usage lines (TEMP VIEW _rc_lines: usage_cost is x_UsageCost where the loader provides it,
-- else BilledCost; corrections count for their ChargePeriod), coverage from TEMP _rc_coverage,
-- and a status. Causes are added by reconciliation_causes.sql. Needs TEMP ref_byok_keys.
CREATE OR REPLACE TEMP TABLE _rc_cells AS
WITH billed AS (
    SELECT day, x_Provider AS provider, x_Account AS account, x_UpstreamModel AS upstream_model,
           sum(usage_cost) AS billed_usd, count(*) AS invoice_lines,
           coalesce(sum(usage_cost) FILTER (WHERE ChargeClass = 'Correction'), 0) AS corrections_usd,
           string_agg(DISTINCT regexp_replace(x_SourceFile, '^.*[/\\]', ''), ', ')
               FILTER (WHERE ChargeClass = 'Correction') AS correction_files,
           any_value(x_ProjectId) AS project_id, any_value(x_ApiKeyId) AS api_key_id,
           any_value(x_WorkspaceId) AS workspace_id, any_value(x_SubAccountId) AS sub_account_id,
           any_value(x_BillingAccountId) AS billing_account_id
    FROM _rc_lines
    WHERE day BETWEEN $wstart AND $wend AND x_Provider <> '_platform' AND ChargeCategory = 'Usage'
    GROUP BY ALL
), expected AS (
    SELECT day, provider, account, upstream_model,
           sum(provider_estimated_usd) AS expected_usd, sum(requests) AS requests,
           string_agg(DISTINCT key_id, ',' ORDER BY key_id) AS key_ids
    FROM intermediate.request_groups
    WHERE day BETWEEN $wstart AND $wend AND credential = 'byok'
    GROUP BY ALL
), joined AS (
    SELECT coalesce(e.day, b.day) AS day, coalesce(e.provider, b.provider) AS provider,
           coalesce(e.account, b.account) AS account,
           coalesce(e.upstream_model, b.upstream_model) AS upstream_model,
           coalesce(e.expected_usd, 0) AS expected_usd, b.billed_usd,
           coalesce(e.requests, 0) AS requests, coalesce(b.invoice_lines, 0) AS invoice_lines,
           e.key_ids, coalesce(b.corrections_usd, 0) AS corrections_usd, b.correction_files,
           -- Does a BYOK key's account match this invoice account (every identifier present
           -- on both sides equal, at least one present on both)?
           b.day IS NOT NULL AND EXISTS (
               SELECT 1 FROM ref_byok_keys k
               WHERE k.provider = b.provider
                 AND (k.project_id IS NULL OR b.project_id IS NULL OR k.project_id = b.project_id)
                 AND (k.api_key_id IS NULL OR b.api_key_id IS NULL OR k.api_key_id = b.api_key_id)
                 AND (k.workspace_id IS NULL OR b.workspace_id IS NULL OR k.workspace_id = b.workspace_id)
                 AND (k.sub_account_id IS NULL OR b.sub_account_id IS NULL
                      OR k.sub_account_id = b.sub_account_id)
                 AND (k.billing_account_id IS NULL OR b.billing_account_id IS NULL
                      OR k.billing_account_id = b.billing_account_id)
                 AND (k.project_id = b.project_id OR k.api_key_id = b.api_key_id
                      OR k.workspace_id = b.workspace_id OR k.sub_account_id = b.sub_account_id
                      OR k.billing_account_id = b.billing_account_id)) AS account_claimed
    FROM expected e
    FULL OUTER JOIN billed b
      ON e.day = b.day AND e.provider = b.provider
     AND e.account IS NOT DISTINCT FROM b.account
     AND e.upstream_model IS NOT DISTINCT FROM b.upstream_model
), covered AS (
    SELECT j.day, j.provider, j.account, j.upstream_model,
           bool_or(c.status = 'arrived') AS arrived,
           bool_or(c.status = 'unreadable') AS unreadable,
           string_agg(DISTINCT c.file, ', ' ORDER BY c.file) FILTER (WHERE c.status = 'unreadable')
               AS unreadable_files
    FROM joined j
    JOIN _rc_coverage c
      ON c.day = j.day AND c.provider = j.provider AND (c.account IS NULL OR c.account = j.account)
    GROUP BY ALL
), cells AS (
    SELECT j.*,
           coalesce(v.arrived, false) AS arrived, coalesce(v.unreadable, false) AS unreadable,
           v.unreadable_files,
           CASE WHEN j.invoice_lines > 0 THEN j.billed_usd
                WHEN coalesce(v.unreadable, false) THEN NULL
                WHEN coalesce(v.arrived, false) THEN CAST(0 AS DECIMAL(38, 9)) END AS billed,
           -- Decimal arithmetic only (a DECIMAL division would go through DOUBLE).
           greatest(CAST($tol_usd AS DECIMAL(38, 9)),
                    CAST(abs(j.expected_usd) * CAST($tol_pct AS DECIMAL(18, 6))
                         * CAST(0.01 AS DECIMAL(4, 2)) AS DECIMAL(38, 9))) AS tolerance_usd
    FROM joined j
    LEFT JOIN covered v
      ON v.day = j.day AND v.provider = j.provider AND v.account IS NOT DISTINCT FROM j.account
     AND v.upstream_model IS NOT DISTINCT FROM j.upstream_model
)
SELECT day, provider, account, upstream_model, expected_usd, billed AS billed_usd,
       billed - expected_usd AS variance_usd,
       -- A percentage too large for DECIMAL(18, 4) (a $1,000 bill on a $0.000000001 estimate)
       -- is NULL rather than an error that would stop the day.
       CASE WHEN expected_usd <> 0 AND billed IS NOT NULL
             AND abs(100 * CAST(billed - expected_usd AS DOUBLE) / CAST(expected_usd AS DOUBLE)) < 1e13
            THEN CAST(round(100 * CAST(billed - expected_usd AS DOUBLE) / CAST(expected_usd AS DOUBLE), 4)
                      AS DECIMAL(18, 4)) END AS variance_pct,
       CASE WHEN billed IS NULL AND unreadable THEN 'invoice_unreadable'
            WHEN billed IS NULL THEN 'missing_invoice'
            WHEN requests = 0 AND invoice_lines > 0 AND billed <> 0 THEN 'unlogged_usage'
            -- Logged cost that an arrived invoice bills at $0 (or less) is never matched.
            WHEN expected_usd > 0 AND billed <= 0 THEN 'under_billed'
            WHEN abs(billed - expected_usd) <= tolerance_usd THEN 'matched'
            WHEN billed > expected_usd THEN 'over_billed'
            ELSE 'under_billed' END AS status,
       requests, invoice_lines, key_ids, corrections_usd, correction_files, account_claimed,
       unreadable_files, tolerance_usd,
       CASE WHEN expected_usd > 0 AND billed > 0
            THEN CAST(billed AS DOUBLE) / CAST(expected_usd AS DOUBLE) END AS ratio
FROM cells;
