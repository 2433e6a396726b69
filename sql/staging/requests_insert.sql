-- Append the valid rows of request-log files to staging.requests (inside the asset's
-- transaction). Reads the TEMP macro request_log_src(files) (typed read_json + _invalid).
-- $source_file: NULL for the original files, or the original path when reading a cleaned copy.
INSERT INTO staging.requests
SELECT
    CAST(regexp_extract(coalesce($source_file, filename), 'dt=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1)
         AS DATE) AS day,
    request_id,
    CAST(ts AS TIMESTAMP) AS ts,
    duration_ms,
    api_key_id, environment, app, member_id, workload, data_class, workflow_id, idempotency_key,
    requested_models, model, provider, upstream_model, credential, key_id,
    account.project_id, account.api_key_id, account.workspace_id, account.sub_account_id,
    account.billing_account_id, account.organization_id,
    attempts,
    CAST(coalesce(len(attempts), 0) AS INTEGER),
    fallback_used, fallback_reason, status, error_code, zdr,
    usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens,
    usage.reasoning_tokens,
    coalesce(CAST(cost.list_usd AS DECIMAL(38, 9)), 0),
    coalesce(CAST(cost.provider_usd AS DECIMAL(38, 9)), 0),
    coalesce(CAST(cost.platform_fee_usd AS DECIMAL(38, 9)), 0),
    coalesce(CAST(cost.platform_credits_usd AS DECIMAL(38, 9)), 0),
    'router',
    coalesce($source_file, filename)
FROM request_log_src($files)
WHERE NOT _invalid;
