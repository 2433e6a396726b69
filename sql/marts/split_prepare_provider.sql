-- Allocation input for provider invoices: each invoice cell (day x provider x account x
-- upstream_model, Usage lines incl. corrections) over the BYOK request groups behind it,
-- weighted by the logs' provider_usd estimates.
CREATE OR REPLACE TEMP TABLE _rg AS
SELECT *, row_number() OVER (
    ORDER BY day, provider, upstream_model, account, environment, app, api_key_id, workload,
             member_id, model, credential, key_id) AS row_id
FROM intermediate.request_groups
WHERE day BETWEEN $start AND $end;

CREATE OR REPLACE TEMP TABLE _prov_cells AS
SELECT day, x_Provider AS provider, x_Account AS account, x_UpstreamModel AS upstream_model,
       any_value(x_ProjectId) AS project_id, any_value(x_ApiKeyId) AS api_key_id,
       any_value(x_WorkspaceId) AS workspace_id, any_value(x_SubAccountId) AS sub_account_id,
       any_value(x_BillingAccountId) AS billing_account_id,
       sum(BilledCost) AS billed, count(*) AS lines,
       string_agg(DISTINCT x_SourceFile, ', ' ORDER BY x_SourceFile) AS files,
       dense_rank() OVER (ORDER BY day, x_Provider, x_Account, x_UpstreamModel) AS cell_id
FROM staging.invoice_lines
WHERE day BETWEEN $start AND $end AND x_Provider <> '_platform' AND ChargeCategory = 'Usage'
GROUP BY day, x_Provider, x_Account, x_UpstreamModel;

CREATE OR REPLACE TEMP TABLE _alloc_in AS
SELECT c.cell_id, g.row_id, g.provider_estimated_usd AS weight, c.billed AS total
FROM _prov_cells c
JOIN _rg g
  ON g.credential = 'byok' AND g.day = c.day AND g.provider = c.provider
 AND g.account IS NOT DISTINCT FROM c.account
 AND g.upstream_model IS NOT DISTINCT FROM c.upstream_model;
