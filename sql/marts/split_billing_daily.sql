-- Split billing: who bills what, per day x environment x app x API key x workload x member x
-- provider x model x credential (plus key, upstream model and account). Billed amounts are
-- the allocations (exact to 1e-9); estimates stay beside them. Unattributed invoice and
-- statement cost is included as environment/app '(unattributed)' rows so that, for an
-- invoiced day, the mart's money sums to the invoices plus the statement.
DELETE FROM marts.split_billing_daily WHERE day BETWEEN $start AND $end;
INSERT INTO marts.split_billing_daily
WITH prov_arrived AS (
    SELECT DISTINCT day, x_Provider AS provider FROM staging.invoice_lines
    WHERE day BETWEEN $start AND $end AND x_Provider <> '_platform'
), stmt_arrived AS (
    SELECT DISTINCT day FROM staging.invoice_lines
    WHERE day BETWEEN $start AND $end AND x_Provider = '_platform'
), joined AS (
    SELECT g.*, pa.allocated AS prov_alloc, pl.allocated AS plat_alloc,
           a.day IS NOT NULL AS prov_in, s.day IS NOT NULL AS stmt_in
    FROM _rg g
    LEFT JOIN _prov_alloc pa ON pa.row_id = g.row_id
    LEFT JOIN _plat_alloc pl ON pl.row_id = g.row_id
    LEFT JOIN prov_arrived a ON a.day = g.day AND a.provider = g.provider
    LEFT JOIN stmt_arrived s ON s.day = g.day
), priced AS (
    SELECT *,
           CASE WHEN credential = 'byok'
                THEN CASE WHEN prov_in THEN coalesce(prov_alloc, 0) END
                ELSE CAST(0 AS DECIMAL(38, 9)) END AS provider_billed,
           CASE WHEN NOT stmt_in THEN platform_fee_estimated_usd
                WHEN credential = 'byok' THEN coalesce(plat_alloc, 0)
                ELSE CAST(0 AS DECIMAL(38, 9)) END AS fee,
           CASE WHEN NOT stmt_in THEN platform_credits_estimated_usd
                WHEN credential = 'shared' THEN coalesce(plat_alloc, 0)
                ELSE CAST(0 AS DECIMAL(38, 9)) END AS credits
    FROM joined
)
SELECT day, environment, app, api_key_id, workload, member_id, provider, model, credential,
       requests, provider_billed, provider_estimated_usd, fee, credits,
       coalesce(provider_billed, provider_estimated_usd) + fee + credits,
       CASE WHEN stmt_in AND (credential IS DISTINCT FROM 'byok' OR prov_in)
            THEN 'invoiced' ELSE 'estimated' END,
       key_id, upstream_model, account, provider_billed - provider_estimated_usd,
       platform_fee_estimated_usd, platform_credits_estimated_usd, list_usd, 'logged'
FROM priced
UNION ALL
SELECT day, '(unattributed)', '(unattributed)', NULL, NULL, NULL, provider, model, credential,
       0, provider_billed, 0, fee, credits, provider_billed + fee + credits, 'invoiced',
       key_id, upstream_model, account, provider_billed, 0, 0, 0, 'unattributed'
FROM _unattributed;
