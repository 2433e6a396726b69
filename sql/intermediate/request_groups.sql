-- Requests of [$start, $end] aggregated to the allocation grain, each BYOK group tied to the
-- invoice account it reconciles against (account matching: every identifier present on both
-- sides equal, at least one present on both; the most specific invoice account wins).
-- Needs TEMP ref_byok_keys. Runs inside the asset's transaction.
DELETE FROM intermediate.request_groups WHERE day BETWEEN $start AND $end;
INSERT INTO intermediate.request_groups
WITH req AS (
    SELECT r.*,
           (r.acct_project_id IS NOT NULL OR r.acct_api_key_id IS NOT NULL
            OR r.acct_workspace_id IS NOT NULL OR r.acct_sub_account_id IS NOT NULL
            OR r.acct_billing_account_id IS NOT NULL) AS has_log_account,
           k.project_id AS k_project_id, k.api_key_id AS k_api_key_id,
           k.workspace_id AS k_workspace_id, k.sub_account_id AS k_sub_account_id,
           k.billing_account_id AS k_billing_account_id
    FROM staging.requests r
    LEFT JOIN ref_byok_keys k ON r.credential = 'byok' AND k.key_id = r.key_id
    WHERE r.day BETWEEN $start AND $end
), grouped AS (
    SELECT day, provider, upstream_model,
           environment, app, api_key_id, workload, member_id,
           coalesce(model, requested_models[1]) AS model, credential, key_id,
           -- The router's logged account wins; the config's account fills in for old logs.
           CASE WHEN credential <> 'byok' THEN NULL WHEN has_log_account THEN acct_project_id ELSE k_project_id END AS project_id,
           CASE WHEN credential <> 'byok' THEN NULL WHEN has_log_account THEN acct_api_key_id ELSE k_api_key_id END AS api_key_id_acct,
           CASE WHEN credential <> 'byok' THEN NULL WHEN has_log_account THEN acct_workspace_id ELSE k_workspace_id END AS workspace_id,
           CASE WHEN credential <> 'byok' THEN NULL WHEN has_log_account THEN acct_sub_account_id ELSE k_sub_account_id END AS sub_account_id,
           CASE WHEN credential <> 'byok' THEN NULL WHEN has_log_account THEN acct_billing_account_id ELSE k_billing_account_id END AS billing_account_id,
           count(*) AS requests,
           sum(provider_usd) AS provider_estimated_usd,
           sum(platform_fee_usd) AS platform_fee_estimated_usd,
           sum(platform_credits_usd) AS platform_credits_estimated_usd,
           sum(list_usd) AS list_usd
    FROM req
    GROUP BY ALL
), numbered AS (
    SELECT *, row_number() OVER () AS gid FROM grouped
), inv AS (
    SELECT DISTINCT day, x_Provider AS provider, x_UpstreamModel AS upstream_model,
           x_Account AS account, x_ProjectId, x_ApiKeyId, x_WorkspaceId, x_SubAccountId,
           x_BillingAccountId
    FROM staging.invoice_lines
    WHERE day BETWEEN $start AND $end AND x_Provider <> '_platform' AND ChargeCategory = 'Usage'
), matched AS (
    SELECT g.gid, i.account
    FROM numbered g
    JOIN inv i
      ON g.credential = 'byok' AND i.day = g.day AND i.provider = g.provider
     AND i.upstream_model IS NOT DISTINCT FROM g.upstream_model
    WHERE (i.x_ProjectId IS NULL OR g.project_id IS NULL OR i.x_ProjectId = g.project_id)
      AND (i.x_ApiKeyId IS NULL OR g.api_key_id_acct IS NULL OR i.x_ApiKeyId = g.api_key_id_acct)
      AND (i.x_WorkspaceId IS NULL OR g.workspace_id IS NULL OR i.x_WorkspaceId = g.workspace_id)
      AND (i.x_SubAccountId IS NULL OR g.sub_account_id IS NULL OR i.x_SubAccountId = g.sub_account_id)
      AND (i.x_BillingAccountId IS NULL OR g.billing_account_id IS NULL
           OR i.x_BillingAccountId = g.billing_account_id)
      AND (CAST(i.x_ProjectId IS NOT NULL AND g.project_id IS NOT NULL AS INTEGER)
           + CAST(i.x_ApiKeyId IS NOT NULL AND g.api_key_id_acct IS NOT NULL AS INTEGER)
           + CAST(i.x_WorkspaceId IS NOT NULL AND g.workspace_id IS NOT NULL AS INTEGER)
           + CAST(i.x_SubAccountId IS NOT NULL AND g.sub_account_id IS NOT NULL AS INTEGER)
           + CAST(i.x_BillingAccountId IS NOT NULL AND g.billing_account_id IS NOT NULL AS INTEGER)
          ) >= 1
    QUALIFY row_number() OVER (
        PARTITION BY g.gid
        ORDER BY (CAST(i.x_ProjectId IS NOT NULL AND g.project_id IS NOT NULL AS INTEGER)
                + CAST(i.x_ApiKeyId IS NOT NULL AND g.api_key_id_acct IS NOT NULL AS INTEGER)
                + CAST(i.x_WorkspaceId IS NOT NULL AND g.workspace_id IS NOT NULL AS INTEGER)
                + CAST(i.x_SubAccountId IS NOT NULL AND g.sub_account_id IS NOT NULL AS INTEGER)
                + CAST(i.x_BillingAccountId IS NOT NULL AND g.billing_account_id IS NOT NULL AS INTEGER)
                ) DESC, i.account
    ) = 1
)
SELECT g.day, g.provider, g.upstream_model,
       CASE WHEN g.credential = 'byok' THEN coalesce(m.account, nullif(concat_ws(';',
            'project_id=' || g.project_id, 'api_key_id=' || g.api_key_id_acct,
            'workspace_id=' || g.workspace_id, 'sub_account_id=' || g.sub_account_id,
            'billing_account_id=' || g.billing_account_id), ''), '(unknown account)') END,
       g.environment, g.app, g.api_key_id, g.workload, g.member_id, g.model, g.credential,
       g.key_id, g.requests, g.provider_estimated_usd, g.platform_fee_estimated_usd,
       g.platform_credits_estimated_usd, g.list_usd, m.account IS NOT NULL
FROM numbered g
LEFT JOIN matched m USING (gid);
