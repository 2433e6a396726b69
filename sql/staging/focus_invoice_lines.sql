-- The in-scope lines of one checked FOCUS export (TEMP _focus_rows) as staging.invoice_lines
-- rows; pipeline/sources/focus.py inserts them BY NAME into the caller's TEMP table.
-- $provider: the provider id; $file: the file as named in x_SourceFile; $known: model names.
SELECT
    day,
    billed AS BilledCost,
    coalesce(effective, billed) AS EffectiveCost,
    list_cost AS ListCost,
    'USD' AS BillingCurrency,
    start_ts AS ChargePeriodStart,
    end_ts AS ChargePeriodEnd,
    bp_start_ts AS BillingPeriodStart,
    bp_end_ts AS BillingPeriodEnd,
    category AS ChargeCategory,
    charge_class AS ChargeClass,
    description AS ChargeDescription,
    provider_name AS ProviderName,
    billing_account AS BillingAccountId,
    sub_account AS SubAccountId,
    resource_id AS ResourceId,
    service_name AS ServiceName,
    meter AS SkuMeter,
    quantity AS ConsumedQuantity,
    unit AS ConsumedUnit,
    tags AS Tags,
    $provider AS x_Provider,
    -- The account is SubAccountId, BillingAccountId only without it (canonical label text).
    CASE
        WHEN sub_account IS NOT NULL THEN 'sub_account_id=' || sub_account
        WHEN billing_account IS NOT NULL THEN 'billing_account_id=' || billing_account
    END AS x_Account,
    sub_account AS x_SubAccountId,
    CASE WHEN sub_account IS NULL THEN billing_account END AS x_BillingAccountId,
    CASE WHEN category = 'Usage' THEN model END AS x_UpstreamModel,
    CASE
        WHEN meter IS NULL THEN NULL
        WHEN lower(meter) = 'input tokens' THEN 'input'
        WHEN lower(meter) = 'output tokens' THEN 'output'
        WHEN lower(meter) = 'cache read input tokens' THEN 'cache_read'
        WHEN lower(meter) = 'cache write input tokens' THEN 'cache_write'
        ELSE 'other'
    END AS x_TokenType,
    $file AS x_SourceFile,
    line AS x_SourceLine,
    -- Committed usage (a commitment such as provisioned throughput or PTUs covers it: billed
    -- $0, its amortised cost in EffectiveCost) is reconciled at EffectiveCost; every other line
    -- at BilledCost. Unused commitment is not usage and keeps BilledCost.
    CASE
        WHEN category = 'Usage' AND billed = 0 AND commitment_id IS NOT NULL
             AND coalesce(commitment_status, 'used') <> 'unused' AND effective > 0
            THEN effective
        ELSE billed
    END AS x_UsageCost
FROM (
    SELECT
        *,
        CASE
            WHEN rid_model IS NULL
                 OR (NOT list_contains($known::VARCHAR[], rid_model)
                     AND list_contains($known::VARCHAR[], fallback_model))
                THEN fallback_model
            ELSE rid_model
        END AS model
    FROM (
        SELECT
            *,
            -- Model: what follows foundation-model/ or models/ in ResourceId, else its last
            -- segment; x_Model or Tags.model when that is a known model and this is not.
            CASE
                WHEN resource_id IS NULL THEN NULL
                WHEN strpos(resource_id, 'foundation-model/') > 0 THEN nullif(rtrim(
                    regexp_extract(resource_id, '.*foundation-model/(.*)$', 1), '/'), '')
                WHEN strpos(resource_id, 'models/') > 0 THEN nullif(rtrim(
                    regexp_extract(resource_id, '.*models/(.*)$', 1), '/'), '')
                ELSE nullif(regexp_extract(rtrim(resource_id, '/'), '([^/]*)$', 1), '')
            END AS rid_model,
            coalesce(x_model, json_extract_string(tags, '$.model')) AS fallback_model
        FROM _focus_rows
        WHERE in_scope
    )
);
