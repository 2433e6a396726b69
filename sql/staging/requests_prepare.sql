-- Typed, flattened request rows of this load (router logs + OpenRouter generations), before
-- de-duplication. Reads TEMP tables _req_in (from read_json) and _gen_rows.
CREATE OR REPLACE TEMP TABLE _req_new AS
SELECT
    day,
    request_id,
    CAST(ts AS TIMESTAMP) AS ts,
    duration_ms,
    api_key_id, environment, app, member_id, workload, data_class, workflow_id, idempotency_key,
    requested_models, model, provider, upstream_model, credential, key_id,
    account.project_id AS acct_project_id,
    account.api_key_id AS acct_api_key_id,
    account.workspace_id AS acct_workspace_id,
    account.sub_account_id AS acct_sub_account_id,
    account.billing_account_id AS acct_billing_account_id,
    account.organization_id AS acct_organization_id,
    attempts,
    CAST(coalesce(len(attempts), 0) AS INTEGER) AS n_attempts,
    fallback_used, fallback_reason, status, error_code, zdr,
    usage.input_tokens AS input_tokens,
    usage.cache_read_tokens AS cache_read_tokens,
    usage.cache_write_tokens AS cache_write_tokens,
    usage.output_tokens AS output_tokens,
    usage.reasoning_tokens AS reasoning_tokens,
    coalesce(CAST(cost.list_usd AS DECIMAL(38, 9)), 0) AS list_usd,
    coalesce(CAST(cost.provider_usd AS DECIMAL(38, 9)), 0) AS provider_usd,
    coalesce(CAST(cost.platform_fee_usd AS DECIMAL(38, 9)), 0) AS platform_fee_usd,
    coalesce(CAST(cost.platform_credits_usd AS DECIMAL(38, 9)), 0) AS platform_credits_usd,
    'router' AS log_source,
    filename AS source_file
FROM _req_in
UNION ALL
SELECT * FROM _gen_rows;
