-- Invoice and statement cells no logged request explains, with the BYOK key and gateway model
-- they most likely belong to (only when exactly one fits).
CREATE OR REPLACE TEMP TABLE _plat_alloc AS SELECT * FROM _alloc_out;

CREATE OR REPLACE TEMP TABLE _unattributed AS
WITH prov AS (
    SELECT c.*,
           (SELECT CASE WHEN count(*) = 1 THEN min(k.key_id) END FROM ref_byok_keys k
            WHERE k.provider = c.provider
              AND (k.project_id IS NULL OR c.project_id IS NULL OR k.project_id = c.project_id)
              AND (k.api_key_id IS NULL OR c.api_key_id IS NULL OR k.api_key_id = c.api_key_id)
              AND (k.workspace_id IS NULL OR c.workspace_id IS NULL OR k.workspace_id = c.workspace_id)
              AND (k.sub_account_id IS NULL OR c.sub_account_id IS NULL OR k.sub_account_id = c.sub_account_id)
              AND (k.billing_account_id IS NULL OR c.billing_account_id IS NULL
                   OR k.billing_account_id = c.billing_account_id)
              AND (k.project_id = c.project_id OR k.api_key_id = c.api_key_id
                   OR k.workspace_id = c.workspace_id OR k.sub_account_id = c.sub_account_id
                   OR k.billing_account_id = c.billing_account_id)) AS key_id,
           (SELECT CASE WHEN count(*) = 1 THEN min(e.model) END FROM ref_endpoints e
            WHERE e.provider = c.provider AND e.upstream_model = c.upstream_model) AS model
    FROM _prov_cells c
    WHERE c.cell_id NOT IN (SELECT cell_id FROM _prov_alloc)
)
SELECT p.day, 'provider_invoice' AS source, p.provider, p.account, p.upstream_model, p.model,
       p.key_id, p.billed AS billed_usd, p.lines AS invoice_lines, p.files AS source_files,
       'provider invoice cost with no logged request behind it' AS reason,
       'byok' AS credential, p.billed AS provider_billed, CAST(0 AS DECIMAL(38, 9)) AS fee,
       CAST(0 AS DECIMAL(38, 9)) AS credits,
       -- The same cell's cause in marts.reconciliation_daily (built just before).
       coalesce(r.likely_cause, 'unknown') AS likely_cause,
       coalesce(r.explanation, p.provider || ' billed cost for ' || coalesce(p.upstream_model, '?')
                || ' with no logged request behind it; reconciliation has not explained this day yet: re-run it.')
           AS explanation
FROM prov p
LEFT JOIN marts.reconciliation_daily r
  ON r.day = p.day AND r.provider = p.provider AND r.account IS NOT DISTINCT FROM p.account
 AND r.upstream_model IS NOT DISTINCT FROM p.upstream_model
UNION ALL
SELECT c.day, 'platform_statement', c.provider, NULL, NULL, c.model, NULL, c.billed, c.lines, c.files,
       'platform statement charge with no logged request for this model and provider',
       CASE WHEN c.all_byok THEN 'byok' ELSE 'shared' END, CAST(0 AS DECIMAL(38, 9)),
       CASE WHEN c.all_byok THEN c.billed ELSE 0 END, CASE WHEN c.all_byok THEN 0 ELSE c.billed END,
       CASE WHEN g.day IS NOT NULL THEN 'logs_missing' ELSE 'usage_outside_router' END,
       CASE WHEN g.day IS NOT NULL
            THEN 'The platform statement bills ' || c.model || ' via ' || coalesce(c.provider, '?') || ' on '
                 || c.day || ' with no logged request, on a day when log writer ' || g.gaps
                 || ' wrote nothing: the requests are probably in the lost log hours; recover those lines.'
            ELSE 'The platform statement bills ' || c.model || ' via ' || coalesce(c.provider, '?') || ' on '
                 || c.day || ' but the router logged no request for that model and provider that day: '
                 || 'traffic reached the platform without this router (another app using the platform key?); find it and route it.'
       END
FROM _plat_cells c
LEFT JOIN (SELECT day, string_agg(writer || ' ' || strftime(gap_start, '%H:%M') || '–'
                                  || strftime(gap_end - INTERVAL 1 SECOND, '%H') || ':59 UTC', '; '
                                  ORDER BY writer, gap_start) AS gaps
           FROM marts.reconciliation_log_gaps GROUP BY day) g ON g.day = c.day
WHERE c.cell_id NOT IN (SELECT cell_id FROM _plat_alloc);
