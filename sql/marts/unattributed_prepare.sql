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
SELECT day, 'provider_invoice' AS source, provider, account, upstream_model, model, key_id,
       billed AS billed_usd, lines AS invoice_lines, files AS source_files,
       'provider invoice cost with no logged request behind it (usage outside the router, '
       || 'or logs not loaded)' AS reason,
       'byok' AS credential, billed AS provider_billed, CAST(0 AS DECIMAL(38, 9)) AS fee,
       CAST(0 AS DECIMAL(38, 9)) AS credits
FROM prov
UNION ALL
SELECT day, 'platform_statement', provider, NULL, NULL, model, NULL, billed, lines, files,
       'platform statement charge with no logged request for this model and provider',
       CASE WHEN all_byok THEN 'byok' ELSE 'shared' END, CAST(0 AS DECIMAL(38, 9)),
       CASE WHEN all_byok THEN billed ELSE 0 END, CASE WHEN all_byok THEN 0 ELSE billed END
FROM _plat_cells
WHERE cell_id NOT IN (SELECT cell_id FROM _plat_alloc);
