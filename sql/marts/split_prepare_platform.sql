-- Keep the provider allocation, then build the platform statement's allocation input: each
-- statement cell (day x model x provider, provider_name mapped through statement_name) over the
-- request groups served there, weighted by the logs' platform_fee_usd + platform_credits_usd.
CREATE OR REPLACE TEMP TABLE _prov_alloc AS SELECT * FROM _alloc_out;

CREATE OR REPLACE TEMP TABLE _plat_cells AS
SELECT day, x_Model AS model, x_StatementProvider AS provider,
       sum(BilledCost) AS billed, count(*) AS lines,
       string_agg(DISTINCT x_SourceFile, ', ' ORDER BY x_SourceFile) AS files,
       bool_and(coalesce(x_Requests, 0) > 0 AND x_ByokRequests = x_Requests) AS all_byok,
       dense_rank() OVER (ORDER BY day, x_Model, x_StatementProvider) AS cell_id
FROM staging.invoice_lines
WHERE day BETWEEN $start AND $end AND x_Provider = '_platform'
GROUP BY day, x_Model, x_StatementProvider;

CREATE OR REPLACE TEMP TABLE _alloc_in AS
SELECT c.cell_id, g.row_id,
       g.platform_fee_estimated_usd + g.platform_credits_estimated_usd AS weight,
       c.billed AS total
FROM _plat_cells c
JOIN _rg g
  ON g.credential IN ('byok', 'shared') AND g.day = c.day AND g.model = c.model
 AND g.provider = c.provider;
