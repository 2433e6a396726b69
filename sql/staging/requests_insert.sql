-- Append the valid rows of one day's request-log files to staging.requests (inside the asset's
-- transaction). Reads the TEMP macro request_log_src(files): typed read_json + _invalid.
-- $day: the dt= folder day of the files; $source_file: NULL for the original files, or the
-- original path when reading a cleaned copy.
INSERT INTO staging.requests
SELECT
    CAST($day AS DATE),
    request_id,
    ts_t,
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
    coalesce(list_usd_d, 0),
    coalesce(provider_usd_d, 0),
    coalesce(platform_fee_usd_d, 0),
    coalesce(platform_credits_usd_d, 0),
    'router',
    coalesce($source_file, filename)
FROM request_log_src($files)
WHERE NOT _invalid;
