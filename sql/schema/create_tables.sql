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
    line BIGINT,                      -- 1-based line number in the file (NULL: the whole file)
    error VARCHAR NOT NULL,           -- what is wrong and what to do, for a person
    raw_text VARCHAR,                 -- the line as read (cut at 64 KiB)
    torn BOOLEAN NOT NULL DEFAULT false, -- an unterminated last line (a writer crashed mid-line)
    reason VARCHAR                    -- reason code: not_json, wrong_type:<field>, ... (docs/log-contract.md)
);
-- DuckDB files from before the reason code: add it (NULL for their old rows).
ALTER TABLE raw.rejected_records ADD COLUMN IF NOT EXISTS reason VARCHAR;

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
    status VARCHAR NOT NULL,          -- loaded | refused (whole file quarantined) | unchanged | removed (invoices: gone, stops counting)
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
    source_file VARCHAR NOT NULL,
    -- Added with the per-line accounting (also added to older DuckDB files below):
    file_day DATE,                    -- the dt= folder day of source_file: the load that owns the row
    source_record BIGINT,             -- n-th record of source_file (blank lines not counted)
    usage_source VARCHAR,             -- provider | estimated | clamped (NULL: provider)
    ttfb_ms DOUBLE,                   -- streaming: time to the first event, ms
    stream BOOLEAN,                   -- true for a streamed request
    error_reason VARCHAR              -- client_closed | upstream_interrupted
);
ALTER TABLE staging.requests ADD COLUMN IF NOT EXISTS file_day DATE;
ALTER TABLE staging.requests ADD COLUMN IF NOT EXISTS source_record BIGINT;
ALTER TABLE staging.requests ADD COLUMN IF NOT EXISTS usage_source VARCHAR;
ALTER TABLE staging.requests ADD COLUMN IF NOT EXISTS ttfb_ms DOUBLE;
ALTER TABLE staging.requests ADD COLUMN IF NOT EXISTS stream BOOLEAN;
ALTER TABLE staging.requests ADD COLUMN IF NOT EXISTS error_reason VARCHAR;

CREATE TABLE IF NOT EXISTS staging.outcomes (
    day DATE NOT NULL,
    event_id VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    request_id VARCHAR,
    workflow_id VARCHAR,
    accepted BOOLEAN NOT NULL,
    score DOUBLE,
    reason VARCHAR,
    source_file VARCHAR NOT NULL,
    file_day DATE,                    -- the dt= folder day of source_file: the load that owns the row
    source_record BIGINT              -- n-th record of source_file
);
ALTER TABLE staging.outcomes ADD COLUMN IF NOT EXISTS file_day DATE;
ALTER TABLE staging.outcomes ADD COLUMN IF NOT EXISTS source_record BIGINT;

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
    x_SourceLocator VARCHAR,          -- JSON path of the item, e.g. data[0].results[3]
    -- What reconciliation compares with usage: BilledCost, except committed usage (FOCUS:
    -- billed 0, a CommitmentDiscountId, EffectiveCost > 0) at EffectiveCost.
    x_UsageCost DECIMAL(38, 9)
);
-- A ledger created before x_UsageCost existed gets the column (NULL there means BilledCost).
ALTER TABLE staging.invoice_lines ADD COLUMN IF NOT EXISTS x_UsageCost DECIMAL(38, 9);

-- Which provider x account x UTC day an invoice file covers, rebuilt per day from the current
-- files. status arrived: a file that loaded covers it (an arrived $0 is still arrived);
-- unreadable: a refused file was about that day. account NULL = every account of the provider
-- (OpenAI Costs and Anthropic cost report pages cover the whole organisation for their
-- buckets; the statement covers the platform for the days it lists); a FOCUS export covers the
-- accounts (x_Account) present in it. A day may have both an arrived and an unreadable row.
CREATE TABLE IF NOT EXISTS staging.invoice_coverage (
    day DATE NOT NULL,
    provider VARCHAR NOT NULL,        -- provider id, or _platform
    account VARCHAR,                  -- x_Account label; NULL = every account of the provider
    status VARCHAR NOT NULL,          -- arrived | unreadable
    file VARCHAR NOT NULL
);

-- Incremental invoices: the current state of every invoice file seen, so only new or changed
-- files are parsed (a file whose size and mtime are unchanged is not even hashed).
CREATE TABLE IF NOT EXISTS raw.invoice_files (
    file VARCHAR NOT NULL,
    provider VARCHAR NOT NULL,
    source VARCHAR NOT NULL,          -- invoices | statement
    bytes BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    fingerprint VARCHAR NOT NULL,     -- sha256 of the bytes parsed
    status VARCHAR NOT NULL,          -- loaded | refused
    reason VARCHAR,                   -- refused: reason code and file:line
    lines BIGINT NOT NULL,
    rows BIGINT NOT NULL,             -- lines after multi-day buckets are spread
    duplicates BIGINT NOT NULL DEFAULT 0, -- lines superseded by (or identical to) a later file
    out_of_scope BIGINT NOT NULL DEFAULT 0,
    out_of_scope_usd DECIMAL(38, 9) NOT NULL DEFAULT 0,
    first_day DATE,
    last_day DATE
);

-- The parsed lines of every current loaded file (the staging.invoice_lines columns), kept so a
-- re-run rebuilds staging without re-parsing. x_SupersededBy: the later file holding the same
-- charge (this line does not count); x_IdenticalCopy: that file bills it identically.
CREATE TABLE IF NOT EXISTS raw.invoice_lines AS
SELECT *, CAST(NULL AS VARCHAR) AS x_SupersededBy, CAST(NULL AS BOOLEAN) AS x_IdenticalCopy
FROM staging.invoice_lines LIMIT 0;
ALTER TABLE raw.invoice_lines ADD COLUMN IF NOT EXISTS x_UsageCost DECIMAL(38, 9);

CREATE TABLE IF NOT EXISTS raw.invoice_file_coverage (
    file VARCHAR NOT NULL,
    day DATE NOT NULL,
    provider VARCHAR NOT NULL,
    account VARCHAR,
    status VARCHAR NOT NULL           -- arrived | unreadable
);

-- Days already built into staging.invoice_lines, and those of them a new, changed or removed
-- invoice file has touched since: they must be re-materialized (`byok-ledger run` and the
-- daily schedule add them to their range).
CREATE TABLE IF NOT EXISTS raw.invoice_staged_days (day DATE NOT NULL);
CREATE TABLE IF NOT EXISTS raw.invoice_pending_days (
    day DATE NOT NULL,
    file VARCHAR NOT NULL,
    change VARCHAR NOT NULL,          -- new | changed | removed
    noted_at TIMESTAMP NOT NULL
);
