-- Intermediate and mart tables (created once; every asset replaces its own days).
CREATE TABLE IF NOT EXISTS intermediate.request_groups (
    day DATE NOT NULL,
    provider VARCHAR,
    upstream_model VARCHAR,
    account VARCHAR,
    environment VARCHAR,
    app VARCHAR,
    api_key_id VARCHAR,
    workload VARCHAR,
    member_id VARCHAR,
    model VARCHAR,
    credential VARCHAR,
    key_id VARCHAR,
    requests BIGINT NOT NULL,
    provider_estimated_usd DECIMAL(38, 9) NOT NULL,
    platform_fee_estimated_usd DECIMAL(38, 9) NOT NULL,
    platform_credits_estimated_usd DECIMAL(38, 9) NOT NULL,
    list_usd DECIMAL(38, 9) NOT NULL,
    account_on_invoice BOOLEAN NOT NULL
);

CREATE TABLE IF NOT EXISTS marts.reconciliation_daily (
    day DATE NOT NULL,
    provider VARCHAR NOT NULL,
    account VARCHAR,
    upstream_model VARCHAR,
    expected_usd DECIMAL(38, 9) NOT NULL,
    billed_usd DECIMAL(38, 9),
    variance_usd DECIMAL(38, 9),
    variance_pct DECIMAL(18, 4),
    status VARCHAR NOT NULL,
    requests BIGINT NOT NULL,
    invoice_lines BIGINT NOT NULL,
    key_ids VARCHAR,
    corrections_usd DECIMAL(38, 9) NOT NULL,
    likely_cause VARCHAR,             -- see docs/marts.md (NULL when matched)
    explanation VARCHAR,              -- one sentence for a finance reader, with the evidence
    tolerance_usd DECIMAL(38, 9),     -- the tolerance the status was judged with
    implied_factor DECIMAL(18, 6),    -- billed / expected (price_mismatch, unknown)
    cause_first_day DATE,             -- price_mismatch: first day of the pattern
    suggested_account VARCHAR,        -- account_mismatch: identifiers for byok_keys[].account
    log_gap VARCHAR,                  -- logs_missing: writer and hours
    estimated_gap_usd DECIMAL(38, 9)  -- logs_missing: estimated cost of the gap
);

CREATE TABLE IF NOT EXISTS marts.split_billing_daily (
    day DATE NOT NULL,
    environment VARCHAR,
    app VARCHAR,
    api_key_id VARCHAR,
    workload VARCHAR,
    member_id VARCHAR,
    provider VARCHAR,
    model VARCHAR,
    credential VARCHAR,
    requests BIGINT NOT NULL,
    provider_billed_usd DECIMAL(38, 9),
    provider_estimated_usd DECIMAL(38, 9) NOT NULL,
    platform_fee_usd DECIMAL(38, 9) NOT NULL,
    platform_credits_usd DECIMAL(38, 9) NOT NULL,
    total_usd DECIMAL(38, 9) NOT NULL,
    status VARCHAR NOT NULL,
    key_id VARCHAR,
    upstream_model VARCHAR,
    account VARCHAR,
    provider_adjustment_usd DECIMAL(38, 9),
    platform_fee_estimated_usd DECIMAL(38, 9) NOT NULL,
    platform_credits_estimated_usd DECIMAL(38, 9) NOT NULL,
    list_usd DECIMAL(38, 9) NOT NULL,
    attribution VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS marts.unattributed_usage (
    day DATE NOT NULL,
    source VARCHAR NOT NULL,
    provider VARCHAR,
    account VARCHAR,
    upstream_model VARCHAR,
    model VARCHAR,
    key_id VARCHAR,
    billed_usd DECIMAL(38, 9) NOT NULL,
    invoice_lines BIGINT NOT NULL,
    source_files VARCHAR,
    reason VARCHAR NOT NULL,
    likely_cause VARCHAR,             -- the same causes as marts.reconciliation_daily
    explanation VARCHAR
);

-- Hours a normally active request-log writer wrote nothing (reconciliation's logs_missing).
CREATE TABLE IF NOT EXISTS marts.reconciliation_log_gaps (
    day DATE NOT NULL,
    writer VARCHAR NOT NULL,          -- the request log file name, e.g. router-2.jsonl
    gap_start TIMESTAMP NOT NULL,     -- UTC, on the hour
    gap_end TIMESTAMP NOT NULL,       -- exclusive
    hours INTEGER NOT NULL,
    typical_lines_per_hour BIGINT NOT NULL,
    active_hours INTEGER NOT NULL,
    estimated_byok_usd DECIMAL(38, 9) NOT NULL
);

CREATE TABLE IF NOT EXISTS marts.non_usage_charges (
    day DATE NOT NULL,
    provider VARCHAR NOT NULL,
    account VARCHAR,
    charge_category VARCHAR NOT NULL,
    charge_class VARCHAR,
    description VARCHAR,
    billed_usd DECIMAL(38, 9) NOT NULL,
    currency VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS marts.cost_per_accepted_output (
    period DATE NOT NULL,
    workload VARCHAR,
    environment VARCHAR,
    model VARCHAR,
    requests BIGINT NOT NULL,
    workflows BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    total_cost_usd DECIMAL(38, 9) NOT NULL,
    cost_per_accepted_usd DECIMAL(38, 9),
    outputs BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    no_outcome BIGINT NOT NULL,
    failed_requests BIGINT NOT NULL,
    fallback_requests BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS marts.policy_violations (
    day DATE NOT NULL,
    request_id VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    violation VARCHAR NOT NULL,
    explanation VARCHAR NOT NULL,
    api_key_id VARCHAR,
    environment VARCHAR,
    workload VARCHAR,
    member_id VARCHAR,
    model VARCHAR,
    provider VARCHAR,
    credential VARCHAR,
    key_id VARCHAR,
    source_file VARCHAR
);

CREATE TABLE IF NOT EXISTS marts.routing_health (
    day DATE NOT NULL,
    provider VARCHAR,
    key_id VARCHAR,
    credential VARCHAR,
    requests BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    served BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    rate_limit_hits BIGINT NOT NULL,
    fallback_served BIGINT NOT NULL,
    error_rate DECIMAL(9, 6),
    rate_limit_rate DECIMAL(9, 6),
    fallback_rate DECIMAL(9, 6),
    byok_share DECIMAL(9, 6),
    shared_share DECIMAL(9, 6)
);
