-- Every table the ledger pipeline owns. Idempotent: safe to run at the start of every asset.
-- Money is DECIMAL(38,9) everywhere; timestamps are UTC (TIMESTAMP without zone, UTC by contract).
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS intermediate;
CREATE SCHEMA IF NOT EXISTS marts;

-- Malformed input lines, kept with where they came from; never stop the good lines.
CREATE TABLE IF NOT EXISTS raw.rejected_records (
    day DATE NOT NULL,                -- the dt= folder (or the invoice day) the line was read for
    source VARCHAR NOT NULL,          -- requests | outcomes | openrouter_generations
    file VARCHAR NOT NULL,
    line BIGINT,                      -- 1-based line number in the file
    error VARCHAR NOT NULL,
    raw_text VARCHAR,                 -- the line as read (truncated to 2,000 characters)
    torn BOOLEAN NOT NULL DEFAULT false -- an unterminated last line (a writer crashed mid-line)
);

-- Every input line counted per day and source: the denominator of the rejected-record rate.
CREATE TABLE IF NOT EXISTS raw.load_stats (
    day DATE NOT NULL,
    source VARCHAR NOT NULL,
    files BIGINT NOT NULL,
    lines_read BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    torn BIGINT NOT NULL,
    duplicates_dropped BIGINT NOT NULL
);

-- One row per input file per load: every line of it ends loaded, duplicate, quarantined or
-- (invoices) out of scope, so lines = loaded + duplicates + quarantined + out_of_scope.
-- Written by every loader (request logs, outcomes, OpenRouter generations, invoices, the
-- platform statement); a blocking check asserts the identity for the latest load of a file.
CREATE TABLE IF NOT EXISTS raw.load_manifest (
    run_id VARCHAR NOT NULL,          -- Dagster run id (or a fresh uuid outside Dagster)
    loaded_at TIMESTAMP NOT NULL,     -- UTC
    source VARCHAR NOT NULL,          -- requests | outcomes | openrouter_generations | invoices | statement
    provider VARCHAR,                 -- invoices: provider id (statement: _platform)
    file VARCHAR NOT NULL,            -- path as read
    bytes BIGINT NOT NULL,
    fingerprint VARCHAR NOT NULL,     -- sha256 of the file's bytes
    lines BIGINT NOT NULL,            -- input lines (JSONL lines, CSV data rows, JSON items)
    loaded BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    out_of_scope BIGINT NOT NULL DEFAULT 0,                -- invoices: lines of non-LLM services
    out_of_scope_usd DECIMAL(38, 9) NOT NULL DEFAULT 0,    -- their BilledCost
    status VARCHAR NOT NULL,          -- loaded | refused (whole file quarantined) | unchanged
    reason VARCHAR,                   -- refused: the reason code and where (file:line)
    first_day DATE,                   -- UTC days the file's records touch
    last_day DATE
);

CREATE TABLE IF NOT EXISTS staging.requests (
    day DATE NOT NULL,
    request_id VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    duration_ms DOUBLE,
    api_key_id VARCHAR,
    environment VARCHAR,
    app VARCHAR,
    member_id VARCHAR,
    workload VARCHAR,
    data_class VARCHAR,
    workflow_id VARCHAR,
    idempotency_key VARCHAR,
    requested_models VARCHAR[],
    model VARCHAR,
    provider VARCHAR,
    upstream_model VARCHAR,
    credential VARCHAR,
    key_id VARCHAR,
    acct_project_id VARCHAR,
    acct_api_key_id VARCHAR,
    acct_workspace_id VARCHAR,
    acct_sub_account_id VARCHAR,
    acct_billing_account_id VARCHAR,
    acct_organization_id VARCHAR,
    attempts STRUCT(model VARCHAR, provider VARCHAR, credential VARCHAR, key_id VARCHAR,
                    status VARCHAR, http_status INTEGER, error_type VARCHAR, latency_ms DOUBLE)[],
    n_attempts INTEGER,
    fallback_used BOOLEAN,
    fallback_reason VARCHAR,
    status VARCHAR NOT NULL,
    error_code INTEGER,
    zdr BOOLEAN,
    input_tokens BIGINT,
    cache_read_tokens BIGINT,
    cache_write_tokens BIGINT,
    output_tokens BIGINT,
    reasoning_tokens BIGINT,
    list_usd DECIMAL(38, 9),
    provider_usd DECIMAL(38, 9),
    platform_fee_usd DECIMAL(38, 9),
    platform_credits_usd DECIMAL(38, 9),
    log_source VARCHAR NOT NULL,      -- router | openrouter_generation
    source_file VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS staging.outcomes (
    day DATE NOT NULL,
    event_id VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    request_id VARCHAR,
    workflow_id VARCHAR,
    accepted BOOLEAN NOT NULL,
    score DOUBLE,
    reason VARCHAR,
    source_file VARCHAR NOT NULL
);

-- Provider invoice lines and platform statement rows, FOCUS column names plus x_ join keys.
CREATE TABLE IF NOT EXISTS staging.invoice_lines (
    day DATE NOT NULL,                -- UTC day of ChargePeriodStart
    BilledCost DECIMAL(38, 9) NOT NULL,
    EffectiveCost DECIMAL(38, 9),
    ListCost DECIMAL(38, 9),
    BillingCurrency VARCHAR NOT NULL,
    ChargePeriodStart TIMESTAMP NOT NULL,
    ChargePeriodEnd TIMESTAMP,
    BillingPeriodStart TIMESTAMP,
    BillingPeriodEnd TIMESTAMP,
    ChargeCategory VARCHAR NOT NULL,  -- Usage | Purchase | Tax | Credit | Adjustment
    ChargeClass VARCHAR,              -- NULL | Correction
    ChargeDescription VARCHAR,
    ProviderName VARCHAR,
    BillingAccountId VARCHAR,
    SubAccountId VARCHAR,
    ResourceId VARCHAR,
    ServiceName VARCHAR,
    SkuMeter VARCHAR,
    ConsumedQuantity DECIMAL(38, 9),
    ConsumedUnit VARCHAR,
    Tags VARCHAR,
    x_Provider VARCHAR NOT NULL,      -- provider id from the config, or _platform
    x_Account VARCHAR,                -- canonical identifiers, e.g. project_id=p;api_key_id=k
    x_ProjectId VARCHAR,
    x_ApiKeyId VARCHAR,
    x_WorkspaceId VARCHAR,
    x_SubAccountId VARCHAR,
    x_BillingAccountId VARCHAR,
    x_UpstreamModel VARCHAR,          -- provider-side model name (statement: gateway slug)
    x_Model VARCHAR,                  -- gateway model slug where the source names it
    x_TokenType VARCHAR,              -- input | cache_read | cache_write | output | other
    x_ServiceTier VARCHAR,
    x_StatementProvider VARCHAR,      -- statement rows: provider id of provider_name
    x_ByokUsageInference DECIMAL(38, 9), -- statement rows: upstream BYOK cost (informational)
    x_Requests BIGINT,
    x_ByokRequests BIGINT,
    x_SourceFile VARCHAR NOT NULL,
    x_SourceLine BIGINT NOT NULL,     -- CSV: line in the file; JSON: ordinal of the item
    x_SourceLocator VARCHAR           -- JSON path of the item, e.g. data[0].results[3]
);
